import http from 'node:http';
import { UsageError } from '../core/errors.js';

/**
 * HTTP(S) endpoints as deployctl is given them: parsed, checked, and shown without their
 * credentials. Shared by every backend and the Prometheus query client.
 */

export interface EndpointAuth {
  username?: string;
  password?: string;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Extra request headers (a proxy's API key, …); their values are never printed. */
  headers?: Record<string, string>;
}

export interface EndpointTls {
  /** PEM contents, not paths: files are read (and refused) while settings are resolved. */
  ca?: string;
  cert?: string;
  key?: string;
  /** Skip certificate verification. */
  insecure?: boolean;
  /** `ca` adds to the system's CAs instead of replacing them (a server other than the backend). */
  withSystemCas?: boolean;
}

/**
 * The URL as it may be shown: user and password replaced (or, with `dropCredentials`, left out),
 * query left out (it may carry a token). A value that is not a URL is masked the same way.
 */
export function redactUrl(url: URL | string, { dropCredentials = false } = {}): string {
  let copy: URL;
  try {
    copy = new URL(String(url));
  } catch {
    return safeText(String(url));
  }
  if (copy.username || copy.password) {
    copy.username = dropCredentials ? '' : '***';
    copy.password = '';
  }
  copy.search = '';
  copy.hash = '';
  return copy.toString();
}

export function parseEndpointUrl(value: string, source = '--pushgateway'): URL {
  let url: URL;
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value.trim());
  // What stands before the last @ may be a user and password: never shown.
  const withoutCredentials = (text: string) =>
    text.includes('@')
      ? `${hasScheme ? text.slice(0, text.indexOf('://') + 3) : ''}***@${text.slice(text.lastIndexOf('@') + 1)}`
      : text;
  const noScheme = () =>
    new UsageError(
      `${source} is not a URL: ${JSON.stringify(safeText(withoutCredentials(value.trim())))} has no http:// or https:// in front`,
      `add http:// (or https://): ${safeText(`http://${withoutCredentials(value.trim())}`)}`,
    );
  try {
    url = new URL(value);
  } catch {
    if (!hasScheme && value.trim() !== '' && !/\s/.test(value.trim())) throw noScheme();
    if (hasScheme && value.includes('@')) {
      // `http://ci:pa/ss@host`: the / ends the host part at "ci:pa", whose port is not a number.
      throw new UsageError(
        `${source} is not a URL: a user or password in it (before the @) has a /, ? or # that is not percent-encoded, so the URL's host ends there: ${JSON.stringify(safeText(withoutCredentials(value)))}`,
        'percent-encode them in the user and password (/ as %2F, ? as %3F, # as %23, @ as %40), or give them in DEPLOYCTL_PUSHGATEWAY_USERNAME and DEPLOYCTL_PUSHGATEWAY_PASSWORD',
      );
    }
    throw new UsageError(
      `${source} is not a URL: ${JSON.stringify(safeText(value))}`,
      'for example http://localhost:9091',
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    // `localhost:9091` parses as the scheme "localhost:".
    if (!hasScheme) throw noScheme();
    throw new UsageError(`${source} must be an http:// or https:// URL, not ${url.protocol}`);
  }
  // `http://user:pa/ss@host` parses as host "user" with "pa/ss@host" as the path: a password
  // with a / or ? in it. Refuse it, and never show what stands before the @.
  if (/@/.test(`${url.pathname}${url.search}${url.hash}`)) {
    throw new UsageError(
      `${source} has an @ after its host: ${JSON.stringify(safeText(value))}`,
      'if it carries a user and password, percent-encode /, ?, # and @ in them (/ as %2F), or give them in DEPLOYCTL_PUSHGATEWAY_USERNAME and DEPLOYCTL_PUSHGATEWAY_PASSWORD',
    );
  }
  try {
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
  } catch {
    throw new UsageError(
      `${source} has a user or password that is not valid percent-encoding: ${JSON.stringify(safeText(value))}`,
    );
  }
  return url;
}

/** A path below a base URL (which may itself have a path), without the base's credentials. */
export function urlBelow(base: URL, path: string): URL {
  const url = new URL(base);
  url.username = '';
  url.password = '';
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`;
  return url;
}

/** `Basic …` for a user and password, or undefined when neither is given. */
export function basicAuthorization(user: string, password: string): string | undefined {
  return user || password ? `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` : undefined;
}

/** Text that may hold a URL with a password: mask everything between :// (or the start) and the last @. */
function safeText(value: string): string {
  if (!value.includes('@')) return value.replace(/\?.*$/s, '');
  const at = value.lastIndexOf('@');
  const scheme = value.indexOf('://');
  const start = scheme >= 0 && scheme < at ? scheme + 3 : 0;
  return `${value.slice(0, start)}***${value.slice(at)}`.replace(/\?.*$/s, '');
}

/** A module to make requests with and its keep-alive agent (one connection). */
export interface Transport {
  module: typeof http;
  agent: http.Agent;
}

/** The transport for an http or https endpoint: node:https (and TLS) is loaded only for https. */
export async function openTransport(secure: boolean, tls: EndpointTls = {}): Promise<Transport> {
  if (!secure) return { module: http, agent: new http.Agent({ keepAlive: true, maxSockets: 1 }) };
  const https = await import('node:https');
  // A `ca` replaces the system's CAs, unless this server is not the one it was given for.
  const ca = tls.ca && tls.withSystemCas ? [...(await import('node:tls')).rootCertificates, tls.ca] : tls.ca;
  const agent = new https.Agent({
    keepAlive: true,
    maxSockets: 1,
    ...(ca && { ca }),
    ...(tls.cert && { cert: tls.cert }),
    ...(tls.key && { key: tls.key }),
    rejectUnauthorized: !tls.insecure,
  });
  return { module: https as unknown as typeof http, agent };
}

/**
 * What of the TLS settings holds for servers other than the backend (a Prometheus scraping the
 * gateway, an Alertmanager): the CA to trust and skipping verification, not the client certificate.
 */
export function trustOnly(tls: EndpointTls): EndpointTls {
  return { ...(tls.ca && { ca: tls.ca, withSystemCas: true }), ...(tls.insecure && { insecure: true }) };
}

/** One GET's answer. */
export interface TextAnswer {
  status: number;
  text: string;
}

/**
 * One GET of a query API (Prometheus, Alertmanager): through fetch, or, for an https URL with TLS
 * settings (a CA, a client certificate, no verification), through node:https with them. A failure
 * to connect rejects with the cause (its `code`) under `cause`, as fetch does.
 */
export async function getText(
  url: URL,
  { headers, signal, tls = {} }: { headers: Record<string, string>; signal: AbortSignal; tls?: EndpointTls },
): Promise<TextAnswer> {
  if (url.protocol !== 'https:' || Object.keys(tls).length === 0) {
    const response = await fetch(url, { headers, signal });
    return { status: response.status, text: await response.text().catch(() => '') };
  }
  const { module, agent } = await openTransport(true, tls);
  try {
    return await new Promise<TextAnswer>((resolve, reject) => {
      // Out of time (or interrupted): the signal's own reason, as fetch says it.
      const fail = (error: Error) =>
        reject(signal.aborted ? signal.reason : new Error(error.message, { cause: error }));
      const request = module.request(url, { method: 'GET', headers, agent, signal }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', fail);
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
      });
      request.on('error', fail);
      request.end();
    });
  } finally {
    agent.destroy();
  }
}

/** Milliseconds since `started` (process.hrtime.bigint(): monotonic, without loading perf_hooks), for request logs. */
export function msSince(started: bigint): number {
  return Math.round(Number(process.hrtime.bigint() - started) / 1e6);
}
