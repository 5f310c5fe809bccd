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
import { GatewayError } from '../../core/errors.js';
import type { Log } from '../../core/log.js';
import { printable } from '../../core/printable.js';
import type { Grouping } from '../../core/record.js';
import type { Destination } from '../backend.js';
import { findGroupState, type GroupEntry, parseAllGroups } from './group-state.js';
import type { GroupState } from './model.js';
import { notFoundHint, plainToTlsHint, schemeMismatchHint } from './url-hints.js';

export interface GatewayOptions {
  /** Base URL of the gateway; credentials in it become a basic-auth header and are never printed. */
  url: string;
  /** Total time for every request this client makes, in milliseconds. */
  timeoutMs: number;
  /** The longest one request may take, so that a hung gateway leaves time for a retry. */
  attemptTimeoutMs?: number;
  auth?: EndpointAuth;
  tls?: EndpointTls;
  log?: (message: string) => void;
}

export interface GatewayResponse {
  status: number;
  /** The body as bytes: the answer of /api/v1/metrics can be tens of megabytes. */
  raw: Buffer;
  /** The body as text. */
  readonly body: string;
}

/** `<label>@base64/<value>`: survives `/`, empty values and any UTF-8, unlike percent-encoding. */
export function encodeGroupingValue(label: string, value: string): string {
  const encoded = Buffer.from(value, 'utf8').toString('base64url');
  return `${label}@base64/${encoded === '' ? '=' : encoded}`;
}

export function groupPath(grouping: Grouping): string {
  return [
    '/metrics',
    encodeGroupingValue('job', grouping.job),
    encodeGroupingValue('service', grouping.service),
    encodeGroupingValue('environment', grouping.environment),
  ].join('/');
}

export class Gateway {
  readonly base: URL;
  private readonly authorization: string | undefined;
  private readonly deadline: number;
  private transportReady: Promise<Transport> | undefined;
  /** The gateway's clock, from the Date of the first answer this client got (any status). */
  clock: ServerClock | undefined;

  constructor(private readonly options: GatewayOptions) {
    this.base = parseEndpointUrl(options.url);
    const auth = options.auth ?? {};
    const user = auth.username ?? decodeURIComponent(this.base.username);
    const password = auth.password ?? decodeURIComponent(this.base.password);
    this.authorization = auth.token ? `Bearer ${auth.token}` : basicAuthorization(user, password);
    this.deadline = Date.now() + options.timeoutMs;
  }

  /** node:https (and TLS) is loaded only for an https gateway. */
  private transport(): Promise<Transport> {
    this.transportReady ??= openTransport(this.base.protocol === 'https:', this.options.tls);
    return this.transportReady;
  }

  /** Milliseconds left of the total budget. */
  remainingMs(): number {
    return this.deadline - Date.now();
  }

  /** The URL of a path below the gateway's base (which may itself have a path), without credentials. */
  url(path: string): URL {
    return urlBelow(this.base, path);
  }

  displayUrl(path: string): string {
    return redactUrl(this.url(path));
  }

  async readGroup(grouping: Grouping): Promise<GroupState> {
    const response = await this.request('GET', '/api/v1/metrics');
    this.expectOk(response, 'read the groups from');
    return findGroupState(response.raw, grouping);
  }

  async readAllGroups(): Promise<GroupEntry[]> {
    const response = await this.request('GET', '/api/v1/metrics');
    this.expectOk(response, 'read the groups from');
    return parseAllGroups(response.body);
  }

  async deleteGroup(grouping: Grouping): Promise<void> {
    const response = await this.request('DELETE', groupPath(grouping));
    this.expectOk(response, 'delete the group on');
  }

  /** The gateway's version from /api/v1/status, or undefined when it does not say. */
  async version(): Promise<string | undefined> {
    const response = await this.request('GET', '/api/v1/status');
    this.expectOk(response, 'report its status from');
    try {
      const body = JSON.parse(response.body) as { data?: { build_information?: { version?: string } } };
      return body.data?.build_information?.version;
    } catch {
      return undefined;
    }
  }

  async push(grouping: Grouping, exposition: string): Promise<void> {
    const response = await this.request('POST', groupPath(grouping), exposition);
    this.expectOk(response, 'store the metrics on');
  }

  close(): void {
    void this.transportReady?.then(({ agent }) => agent.destroy());
  }

  private expectOk(response: GatewayResponse, action: string): void {
    if (response.status >= 200 && response.status < 300) return;
    const reason = printable(response.body.trim().split('\n').slice(0, 3).join(' ').slice(0, 500));
    const retryable = response.status >= 500 || response.status === 429;
    const hint =
      response.status === 401 || response.status === 403
        ? 'check the gateway credentials'
        : response.status === 404
          ? notFoundHint(this.base)
          : plainToTlsHint(this.base, response.status, response.body);
    throw new GatewayError(
      `the gateway at ${redactUrl(this.base)} refused to ${action} it: HTTP ${response.status}${reason ? `: ${reason}` : ''}`,
      response.status,
      retryable,
      hint,
      permanentAnswer(response.status) ? 'permanent' : undefined,
    );
  }

  async request(method: string, path: string, body?: string): Promise<GatewayResponse> {
    const { module: transport, agent } = await this.transport();
    const url = this.url(path);
    const shown = `${method} ${redactUrl(url)}`;
    const remaining = Math.min(this.deadline - Date.now(), this.options.attemptTimeoutMs ?? Infinity);
    if (remaining <= 0) {
      return Promise.reject(new OutOfTimeError(shown));
    }
    const started = process.hrtime.bigint();
    const headers: http.OutgoingHttpHeaders = { ...this.options.auth?.headers };
    if (this.authorization) headers.authorization = this.authorization;
    if (body !== undefined) {
      headers['content-type'] = 'text/plain; version=0.0.4; charset=utf-8';
      headers['content-length'] = Buffer.byteLength(body);
    }
    return new Promise((resolve, reject) => {
      const request = transport.request(url, { method, headers, agent, timeout: remaining }, (response) => {
        // Taken as the answer's head arrives: a large body must not count as clock offset.
        this.clock ??= serverClockFrom(response.headers.date, Date.now() / 1000);
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const status = response.statusCode ?? 0;
          this.options.log?.(`${shown} → ${status} in ${msSince(started)} ms`);
          const raw = Buffer.concat(chunks);
          resolve({
            status,
            raw,
            get body() {
              return raw.toString('utf8');
            },
          });
        });
        response.on('error', (error) => reject(this.networkError(shown, error)));
      });
      const timer = setTimeout(() => request.destroy(new Error(`timed out after ${remaining} ms`)), remaining);
      request.on('close', () => clearTimeout(timer));
      request.on('timeout', () => request.destroy(new Error(`timed out after ${remaining} ms`)));
      request.on('error', (error) => reject(this.networkError(shown, error)));
      request.end(body);
    });
  }

  private networkError(shown: string, error: Error & { code?: string }): GatewayError {
    const reason = error.code
      ? `${error.code}${error.message.includes(error.code) ? '' : ` ${error.message}`}`
      : error.message;
    const tlsProblem =
      /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|SSL/i.test(error.code ?? '') ||
      /certificate|handshake/i.test(error.message);
    const schemeMismatch = schemeMismatchHint(this.base, error);
    const hint =
      schemeMismatch ??
      (tlsProblem
        ? "a TLS problem: trust the gateway's CA with --ca-file, give a client certificate with --cert-file/--key-file, or (for testing only) --insecure"
        : 'is the Pushgateway running, and is --pushgateway right?');
    // A certificate problem or the wrong scheme does not go away by retrying; the wrong scheme
    // never will for this URL (a certificate can be trusted later, with the same URL).
    return new GatewayError(
      `could not ${shown}: ${reason}`,
      undefined,
      !tlsProblem && !schemeMismatch,
      hint,
      schemeMismatch ? 'permanent' : error.code === 'ECONNREFUSED' ? 'refused' : undefined,
    );
  }
}

/**
 * A refusal the same request to the same URL will always get: a path that is not a Pushgateway's
 * (404, 405: a URL ending in /metrics, a Prometheus port), a request it cannot take (400, 413, 422).
 * Credentials (401, 403), time-outs (408) and rate limits (429) can change without a new URL.
 */
function permanentAnswer(status: number): boolean {
  return status >= 400 && status < 500 && ![401, 403, 408, 429].includes(status);
}

/** The gateway client of a destination; `timeoutSeconds` narrows the budget (never widens it). */
export function openGateway(
  destination: Pick<Destination, 'url' | 'auth' | 'tls' | 'timeoutSeconds'>,
  log: Log,
  timeoutSeconds = destination.timeoutSeconds,
): Gateway {
  const seconds = Math.min(timeoutSeconds, destination.timeoutSeconds);
  return new Gateway({
    url: destination.url,
    timeoutMs: seconds * 1000,
    attemptTimeoutMs: Math.max(1000, (seconds * 1000) / 3),
    auth: destination.auth,
    tls: destination.tls,
    log: log.debug,
  });
}
