import type http from 'node:http';
import {
  basicAuthorization,
  type EndpointAuth,
  type EndpointTls,
  msSince,
  openTransport,
  parseEndpointUrl,
  redactUrl,
  type Transport,
  urlBelow,
} from '../../adapters/http-endpoint.js';
import { OutOfTimeError } from '../../adapters/retry.js';
import { type ServerClock, serverClockFrom } from '../../core/clock.js';
import { GatewayError, UsageError } from '../../core/errors.js';
import type { Log } from '../../core/log.js';
import { printable } from '../../core/printable.js';
import type { Destination } from '../backend.js';
import type { RawSeries } from './ledger.js';

export interface RemoteWriteOptions {
  /** The remote-write endpoint (…/api/v1/write, …/api/v1/push, …/api/v1/receive). */
  url: string;
  /** The query API for reads; derived from `url` when not given (see queryBaseFor). */
  queryUrl?: string;
  /** Total time for every request this client makes, in milliseconds. */
  timeoutMs: number;
  attemptTimeoutMs?: number;
  auth?: EndpointAuth;
  tls?: EndpointTls;
  log?: (message: string) => void;
}

/** The headers of the remote-write 1.0 spec. */
export const REMOTE_WRITE_HEADERS = {
  'content-type': 'application/x-protobuf',
  'content-encoding': 'snappy',
  'x-prometheus-remote-write-version': '0.1.0',
} as const;

/**
 * The query API of a store from its remote-write URL, where the store serves both:
 * Prometheus and VictoriaMetrics (`/api/v1/write` → the same base), Mimir and Cortex
 * (`/api/v1/push` → `/prometheus`), VictoriaMetrics cluster (`/insert/T/prometheus/api/v1/write`
 * → `/select/T/prometheus`). Thanos Receive has none: give --prometheus.
 */
export function queryBaseFor(writeUrl: URL): URL | undefined {
  const url = new URL(writeUrl);
  const path = url.pathname.replace(/\/+$/, '');
  const cluster = /^(.*)\/insert\/([^/]+)\/prometheus\/api\/v1\/write$/.exec(path);
  if (cluster) url.pathname = `${cluster[1]}/select/${cluster[2]}/prometheus`;
  else if (path.endsWith('/api/v1/write')) url.pathname = path.slice(0, -'/api/v1/write'.length);
  else if (path.endsWith('/api/v1/push')) url.pathname = `${path.slice(0, -'/api/v1/push'.length)}/prometheus`;
  else return undefined;
  url.search = '';
  return url;
}

/**
 * Answers that are 5xx but will never succeed: Prometheus 2.x answers 500 for a sample older
 * than its out-of-order window ("too old sample"; later versions answer 400), and for samples
 * outside the head's bounds.
 */
const PERMANENT_5XX = /too old sample|out of bounds|out of order sample/i;

/** A store's answer that says why it refused, and whether sending the same request again can help. */
export function classifyAnswer(
  status: number,
  body: string,
): { retryable: boolean; reason: string; permanent: boolean } {
  const reason = printable(body.trim().split('\n').slice(0, 3).join(' ').slice(0, 500));
  if (status === 429) return { retryable: true, reason, permanent: false };
  if (status >= 500) {
    const never = PERMANENT_5XX.test(body);
    return { retryable: !never, reason, permanent: never };
  }
  // Credentials and time-outs can change for the same URL; any other refusal of these samples will not.
  return { retryable: false, reason, permanent: status >= 400 && ![401, 403, 408].includes(status) };
}

/** A hint for a refusal, in the store's own words where it has some. */
function hintFor(status: number, reason: string): string | undefined {
  if (/out of order|too old|out of bounds/i.test(reason)) {
    return (
      'the store refuses samples older than its newest ones: set storage.tsdb.out_of_order_time_window in Prometheus (out_of_order_time_window per tenant in Mimir), or record deployments as they finish. ' +
      "If every record is refused, a sample stamped in the future (a machine's clock far ahead) may hold the store's newest time there"
    );
  }
  if (status === 401 || status === 403)
    return 'check the credentials (DEPLOYCTL_PUSHGATEWAY_USERNAME/PASSWORD/TOKEN) and any tenant header (--header "X-Scope-OrgID: …")';
  if (status === 404)
    return 'is --remote-write the write endpoint (Prometheus and VictoriaMetrics /api/v1/write, Mimir and Cortex /api/v1/push, Thanos /api/v1/receive)?';
  if (status === 400 && /duplicate/i.test(reason))
    return 'a sample of this group already exists at the same millisecond with another value';
  return undefined;
}

export class RemoteWriteClient {
  readonly writeUrl: URL;
  readonly queryBase: URL | undefined;
  private readonly authorization: string | undefined;
  private readonly deadline: number;
  private readonly transports = new Map<boolean, Promise<Transport>>();
  /** The store's clock, from the Date of the first answer this client got (any status, write or query API). */
  clock: ServerClock | undefined;

  constructor(private readonly options: RemoteWriteOptions) {
    this.writeUrl = parseEndpointUrl(options.url, '--remote-write');
    this.queryBase = options.queryUrl
      ? parseEndpointUrl(options.queryUrl, '--prometheus')
      : queryBaseFor(this.writeUrl);
    const auth = options.auth ?? {};
    const user = auth.username ?? decodeURIComponent(this.writeUrl.username);
    const password = auth.password ?? decodeURIComponent(this.writeUrl.password);
    this.authorization = auth.token ? `Bearer ${auth.token}` : basicAuthorization(user, password);
    this.deadline = Date.now() + options.timeoutMs;
  }

  remainingMs(): number {
    return this.deadline - Date.now();
  }

  get displayUrl(): string {
    return redactUrl(this.writeUrl);
  }

  /** node:https is loaded only for an https endpoint; the write and the query API each get the transport of their own scheme. */
  private transport(url: URL): Promise<Transport> {
    const secure = url.protocol === 'https:';
    let ready = this.transports.get(secure);
    if (!ready) {
      ready = openTransport(secure, this.options.tls);
      this.transports.set(secure, ready);
    }
    return ready;
  }

  /** Sends one snappy-compressed WriteRequest; resolves on 2xx, throws a classified error otherwise. */
  async write(compressed: Uint8Array): Promise<void> {
    const { status, body } = await this.request('POST', this.writeUrl, REMOTE_WRITE_HEADERS, compressed);
    if (status >= 200 && status < 300) return;
    const { retryable, reason, permanent } = classifyAnswer(status, body);
    throw new GatewayError(
      `the store at ${this.displayUrl} refused the samples: HTTP ${status}${reason ? `: ${reason}` : ''}`,
      status,
      retryable,
      hintFor(status, reason),
      permanent ? 'permanent' : undefined,
    );
  }

  /**
   * Asks the write endpoint for nothing but an answer, for the store's clock in its Date (any
   * status will do: a GET of a write endpoint is usually refused). Only for a record that would
   * otherwise be written before any answer came (a start, a step, a store without a query API).
   */
  async probeClock(): Promise<void> {
    await this.request('GET', this.writeUrl, {});
  }

  /**
   * Raw samples of a range selector (`name{…}[d]`) at `timeMs`, through the query API. Asks
   * VictoriaMetrics not to answer from its cache (`nocache=1`; Prometheus ignores it).
   */
  async rawSamples(selector: string, timeMs: number): Promise<RawSeries[]> {
    const data = await this.query<{ resultType: string; result: RawSeries[] }>(selector, timeMs);
    return data.resultType === 'matrix' ? data.result : [];
  }

  /** An instant query's vector. */
  async vector(expr: string, timeMs?: number): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const data = await this.query<{
      resultType: string;
      result: { metric: Record<string, string>; value: [number, string] }[];
    }>(expr, timeMs);
    return data.resultType === 'vector' ? data.result : [];
  }

  /** A GET below the query API's base (status and flag pages for `doctor`); undefined without a query API. */
  async getBelowQueryApi(path: string): Promise<{ status: number; body: string } | undefined> {
    return this.queryBase ? this.request('GET', urlBelow(this.queryBase, path), {}) : undefined;
  }

  private async query<T>(expr: string, timeMs: number | undefined): Promise<T> {
    if (!this.queryBase) {
      throw new GatewayError(
        `no query API is known for ${this.displayUrl}`,
        undefined,
        false,
        "give the store's Prometheus query API with --prometheus or DEPLOYCTL_PROMETHEUS_URL",
      );
    }
    const url = urlBelow(this.queryBase, '/api/v1/query');
    url.searchParams.set('query', expr);
    if (timeMs !== undefined) url.searchParams.set('time', (timeMs / 1000).toFixed(3));
    url.searchParams.set('nocache', '1');
    const { status, body } = await this.request('GET', url, {});
    let parsed: { status?: string; error?: string; data?: T } = {};
    try {
      parsed = JSON.parse(body) as typeof parsed;
    } catch {
      // reported below
    }
    if (status < 200 || status >= 300 || parsed.status !== 'success') {
      const reason = printable(String(parsed.error ?? body.trim().slice(0, 300)));
      throw new GatewayError(
        `the query API at ${redactUrl(this.queryBase)} answered HTTP ${status}${reason ? `: ${reason}` : ''}`,
        status,
        status >= 500 || status === 429,
        status === 404 ? "is --prometheus the store's Prometheus query API (the base below /api/v1/query)?" : undefined,
      );
    }
    return parsed.data as T;
  }

  private async request(
    method: string,
    url: URL,
    extraHeaders: Record<string, string>,
    body?: Uint8Array,
  ): Promise<{ status: number; body: string }> {
    const { module: transport, agent } = await this.transport(url);
    const shown = `${method} ${redactUrl(url)}`;
    const remaining = Math.min(this.deadline - Date.now(), this.options.attemptTimeoutMs ?? Infinity);
    if (remaining <= 0) throw new OutOfTimeError(shown);
    const started = process.hrtime.bigint();
    const headers: http.OutgoingHttpHeaders = { ...this.options.auth?.headers, ...extraHeaders };
    if (this.authorization) headers.authorization = this.authorization;
    if (body !== undefined) headers['content-length'] = body.length;
    const target = new URL(url);
    target.username = '';
    target.password = '';
    return new Promise((resolve, reject) => {
      const request = transport.request(target, { method, headers, agent, timeout: remaining }, (response) => {
        this.clock ??= serverClockFrom(response.headers.date, Date.now() / 1000);
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const status = response.statusCode ?? 0;
          this.options.log?.(`${shown} → ${status} in ${msSince(started)} ms`);
          resolve({ status, body: Buffer.concat(chunks).toString('utf8') });
        });
        response.on('error', (error) => reject(networkError(shown, error)));
      });
      const timer = setTimeout(() => request.destroy(new Error(`timed out after ${remaining} ms`)), remaining);
      request.on('close', () => clearTimeout(timer));
      request.on('timeout', () => request.destroy(new Error(`timed out after ${remaining} ms`)));
      request.on('error', (error) => reject(networkError(shown, error)));
      request.end(body);
    });
  }

  close(): void {
    for (const ready of this.transports.values()) void ready.then(({ agent }) => agent.destroy());
  }
}

function networkError(shown: string, error: Error & { code?: string }): GatewayError {
  const reason = error.code
    ? `${error.code}${error.message.includes(error.code) ? '' : ` ${error.message}`}`
    : error.message;
  const tlsProblem =
    /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|SSL/i.test(error.code ?? '') ||
    /certificate|handshake/i.test(error.message);
  const hint = tlsProblem
    ? "a TLS problem: trust the store's CA with --ca-file, give a client certificate with --cert-file/--key-file, or (for testing only) --insecure"
    : 'is the store running, and is --remote-write right?';
  return new GatewayError(
    `could not ${shown}: ${reason}`,
    undefined,
    !tlsProblem,
    hint,
    error.code === 'ECONNREFUSED' ? 'refused' : undefined,
  );
}

/** The remote-write client of a destination; `seconds` narrows the budget. */
export function openRemoteWrite(
  destination: Pick<Destination, 'url' | 'prometheus' | 'auth' | 'tls' | 'timeoutSeconds'>,
  log: Log,
  seconds = destination.timeoutSeconds,
): RemoteWriteClient {
  if (!destination.url) throw new UsageError('no --remote-write URL given');
  return new RemoteWriteClient({
    url: destination.url,
    ...(destination.prometheus && { queryUrl: destination.prometheus }),
    timeoutMs: seconds * 1000,
    attemptTimeoutMs: Math.max(1000, (seconds * 1000) / 3),
    auth: destination.auth,
    tls: destination.tls,
    log: log.debug,
  });
}
