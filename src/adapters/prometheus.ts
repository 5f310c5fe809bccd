import { DeployctlError, UsageError } from '../core/errors.js';
import {
  basicAuthorization,
  type EndpointAuth,
  type EndpointTls,
  getText,
  parseEndpointUrl,
  redactUrl,
  type TextAnswer,
  urlBelow,
} from './http-endpoint.js';

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** A Prometheus server's HTTP API, read with instant queries. */
export class Prometheus {
  readonly base: URL;

  /**
   * `signal` ends every request early (a caller's own deadline over several requests); `auth`, the
   * store's own credentials and headers (a tenant) where the query API is the store written to.
   */
  constructor(
    url: string,
    private readonly timeoutMs: number,
    private readonly signal?: AbortSignal,
    private readonly auth: EndpointAuth = {},
    private readonly tls: EndpointTls = {},
  ) {
    this.base = parseEndpointUrl(url, '--prometheus');
  }

  async get<T>(path: string, params: Record<string, string> = {}): Promise<T> {
    const url = urlBelow(this.base, path);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    const authorization = this.auth.token
      ? `Bearer ${this.auth.token}`
      : basicAuthorization(
          this.auth.username ?? decodeURIComponent(this.base.username),
          this.auth.password ?? decodeURIComponent(this.base.password),
        );
    const headers: Record<string, string> = { ...this.auth.headers, ...(authorization && { authorization }) };
    let response: TextAnswer;
    try {
      const timeout = AbortSignal.timeout(this.timeoutMs);
      const signal = this.signal ? AbortSignal.any([timeout, this.signal]) : timeout;
      response = await getText(url, { headers, signal, tls: this.tls });
    } catch (error) {
      const cause = (error as Error & { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      throw new DeployctlError(
        `could not reach Prometheus at ${redactUrl(this.base)}: ${cause}`,
        1,
        'is --prometheus the address of a Prometheus server?',
      );
    }
    let body: { status?: string; error?: string; data?: T } = {};
    try {
      body = JSON.parse(response.text) ?? {};
    } catch {
      // not JSON (an HTML page, a proxy's error): said below by its status
    }
    if (response.status < 200 || response.status > 299 || body.status !== 'success') {
      throw new DeployctlError(
        `Prometheus at ${redactUrl(this.base)} answered ${path} with HTTP ${response.status}${body.error ? `: ${body.error}` : ''}`,
      );
    }
    return body.data as T;
  }

  async query(expr: string): Promise<Sample[]> {
    const data = await this.get<{
      resultType: string;
      result: { metric: Record<string, string>; value: [number, string] }[];
    }>('/api/v1/query', { query: expr });
    if (data.resultType !== 'vector') return [];
    return data.result.map((r) => ({ labels: r.metric, value: Number(r.value[1]) }));
  }

  /**
   * An instant query whose answer is judged: a vector's samples, a scalar as one sample without
   * labels; any other answer (a range vector, a string) is an error rather than "no data".
   */
  async instant(expr: string): Promise<Sample[]> {
    const data = await this.get<{ resultType: string; result: unknown }>('/api/v1/query', { query: expr });
    if (data?.resultType === 'scalar') {
      const [, value] = data.result as [number, string];
      return [{ labels: {}, value: Number(value) }];
    }
    if (data?.resultType !== 'vector' || !Array.isArray(data.result))
      throw new DeployctlError(
        `Prometheus at ${redactUrl(this.base)} answered ${JSON.stringify(expr)} with a ${data?.resultType ?? 'missing'} result, not an instant vector`,
      );
    return (data.result as { metric: Record<string, string>; value: [number, string] }[]).map((r) => ({
      labels: r.metric,
      value: Number(r.value[1]),
    }));
  }
}

const DURATION = /^(\d+)(s|m|h|d|w|y)$/;
const SECONDS = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800, y: 31_536_000 } as const;

/** A PromQL duration such as 30d; returns its length in seconds. */
export function parseWindow(value: string): number {
  const match = DURATION.exec(value.trim());
  if (!match || Number(match[1]) === 0)
    throw new UsageError(`--window must be a duration such as 7d, 30d or 12h, not ${JSON.stringify(value)}`);
  return Number(match[1]) * SECONDS[match[2] as keyof typeof SECONDS];
}
