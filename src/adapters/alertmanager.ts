import { DeployctlError } from '../core/errors.js';
import {
  basicAuthorization,
  type EndpointTls,
  getText,
  parseEndpointUrl,
  redactUrl,
  type TextAnswer,
  urlBelow,
} from './http-endpoint.js';

/** A firing alert, as Alertmanager's API v2 lists it. */
export interface FiringAlert {
  name: string;
  labels: Record<string, string>;
  startsAt: string;
  fingerprint: string;
}

/** Quotes a label value for an Alertmanager matcher (`name="value"`). */
function matcherValue(value: string): string {
  return JSON.stringify(value);
}

/** Alertmanager's API v2, read for the alerts firing now (active, not silenced, not inhibited). */
export class Alertmanager {
  readonly base: URL;

  constructor(
    url: string,
    private readonly timeoutMs: number,
    private readonly tls: EndpointTls = {},
  ) {
    this.base = parseEndpointUrl(url, '--alertmanager');
  }

  /** The request that lists the firing alerts whose labels equal `match`. */
  alertsUrl(match: Record<string, string>): URL {
    const url = urlBelow(this.base, '/api/v2/alerts');
    url.searchParams.set('active', 'true');
    url.searchParams.set('silenced', 'false');
    url.searchParams.set('inhibited', 'false');
    for (const [name, value] of Object.entries(match))
      url.searchParams.append('filter', `${name}=${matcherValue(value)}`);
    return url;
  }

  async firing(match: Record<string, string>): Promise<FiringAlert[]> {
    const url = this.alertsUrl(match);
    const authorization = basicAuthorization(
      decodeURIComponent(this.base.username),
      decodeURIComponent(this.base.password),
    );
    let response: TextAnswer;
    try {
      response = await getText(url, {
        headers: { accept: 'application/json', ...(authorization && { authorization }) },
        signal: AbortSignal.timeout(this.timeoutMs),
        tls: this.tls,
      });
    } catch (error) {
      const cause = (error as Error & { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      throw new DeployctlError(`could not reach Alertmanager at ${redactUrl(this.base)}: ${cause}`);
    }
    const { text } = response;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (response.status < 200 || response.status > 299 || !Array.isArray(body)) {
      throw new DeployctlError(
        `Alertmanager at ${redactUrl(this.base)} answered /api/v2/alerts with HTTP ${response.status}${Array.isArray(body) ? '' : ', not a list of alerts'}`,
      );
    }
    return body.flatMap((alert: unknown) => {
      const a = alert as {
        labels?: Record<string, string>;
        startsAt?: string;
        fingerprint?: string;
        status?: { state?: string };
      };
      if (typeof a?.labels !== 'object' || a.labels === null) return [];
      if (a.status?.state !== undefined && a.status.state !== 'active') return [];
      return [
        {
          name: String(a.labels.alertname ?? '(no alertname)'),
          labels: a.labels,
          startsAt: String(a.startsAt ?? ''),
          fingerprint: String(a.fingerprint ?? ''),
        },
      ];
    });
  }
}
