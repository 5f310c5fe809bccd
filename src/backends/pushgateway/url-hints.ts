/**
 * What to tell a user whose gateway URL is subtly wrong: the fixes for the mistakes people make
 * with a Pushgateway address, from the URL and how the request failed.
 */

/** The URL as a person would type it again: no credentials, no trailing slash. */
function shown(url: URL, pathname = url.pathname): string {
  const copy = new URL(url);
  copy.username = '';
  copy.password = '';
  copy.pathname = pathname;
  copy.search = '';
  return copy.toString().replace(/\/$/, '');
}

/** The gateway answered 404: a /metrics suffix or a path prefix is the usual cause. */
export function notFoundHint(base: URL): string {
  const path = base.pathname.replace(/\/+$/, '');
  if (/\/metrics$/.test(path)) {
    return `the URL ends in /metrics, where Prometheus scrapes the gateway; deployctl needs the gateway's own address: --pushgateway ${shown(base, path.replace(/\/metrics$/, '') || '/')}`;
  }
  if (path) {
    return `nothing answers under the path ${path}: if the gateway serves at the root, use --pushgateway ${shown(base, '/')}; if it runs with --web.route-prefix, give that prefix`;
  }
  return 'is --pushgateway the address of a Prometheus Pushgateway?';
}

/** Whether a connection error says the two ends speak different protocols (https to plain http, or the reverse). */
export function schemeMismatchHint(base: URL, error: Error & { code?: string }): string | undefined {
  const message = `${error.code ?? ''} ${error.message}`;
  if (
    base.protocol === 'https:' &&
    /wrong version number|packet length too long|unknown protocol|EPROTO/i.test(message)
  ) {
    return `the gateway speaks plain HTTP, not HTTPS: use --pushgateway ${shown(base).replace(/^https:/, 'http:')}`;
  }
  return undefined;
}

/** A 400 from a TLS listener that was sent plain HTTP. */
export function plainToTlsHint(base: URL, status: number, body: string): string | undefined {
  if (base.protocol === 'http:' && status === 400 && /HTTP request to an HTTPS server/i.test(body)) {
    return `the gateway speaks HTTPS: use --pushgateway ${shown(base).replace(/^http:/, 'https:')}`;
  }
  return undefined;
}
