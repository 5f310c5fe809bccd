import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Alertmanager } from '../../src/adapters/alertmanager.js';
import { Prometheus } from '../../src/adapters/prometheus.js';

/** A stand-in server: answers by path, and keeps each request's URL and headers. */
let server: http.Server;
let base = '';
const seen: { url: string; headers: http.IncomingHttpHeaders }[] = [];
const answers: Record<string, { status: number; body: string }> = {};

beforeAll(async () => {
  server = http.createServer((request, response) => {
    seen.push({ url: request.url ?? '', headers: request.headers });
    const answer = answers[new URL(request.url ?? '/', 'http://x').pathname] ?? { status: 404, body: 'no' };
    response.writeHead(answer.status).end(answer.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('Prometheus.instant', () => {
  it('reads a vector and a scalar, with the store credentials and headers it is given', async () => {
    answers['/api/v1/query'] = {
      status: 200,
      body: JSON.stringify({
        status: 'success',
        data: { resultType: 'vector', result: [{ metric: { a: 'b' }, value: [1, '0.5'] }] },
      }),
    };
    const prometheus = new Prometheus(base, 2000, undefined, { token: 't0k', headers: { 'X-Scope-OrgID': 'team' } });
    expect(await prometheus.instant('x')).toEqual([{ labels: { a: 'b' }, value: 0.5 }]);
    expect(seen.at(-1)!.headers.authorization).toBe('Bearer t0k');
    expect(seen.at(-1)!.headers['x-scope-orgid']).toBe('team');
    answers['/api/v1/query'] = {
      status: 200,
      body: JSON.stringify({ status: 'success', data: { resultType: 'scalar', result: [1, '3'] } }),
    };
    expect(await new Prometheus(base, 2000).instant('scalar(x)')).toEqual([{ labels: {}, value: 3 }]);
    expect(seen.at(-1)!.headers.authorization).toBeUndefined();
  });

  it('refuses HTML, a range vector and a refused connection as errors, never as no data', async () => {
    answers['/api/v1/query'] = { status: 200, body: '<html>login</html>' };
    await expect(new Prometheus(base, 2000).instant('x')).rejects.toThrow(/HTTP 200/);
    answers['/api/v1/query'] = {
      status: 200,
      body: JSON.stringify({ status: 'success', data: { resultType: 'matrix', result: [] } }),
    };
    await expect(new Prometheus(base, 2000).instant('x[5m]')).rejects.toThrow(/matrix result/);
    await expect(new Prometheus('http://127.0.0.1:1', 2000).instant('x')).rejects.toThrow(/could not reach Prometheus/);
  });
});

describe('Alertmanager.firing', () => {
  it('asks for the active, unsilenced, uninhibited alerts of the group, and names them', async () => {
    answers['/api/v2/alerts'] = {
      status: 200,
      body: JSON.stringify([
        {
          labels: { alertname: 'Down', service: 'a"b' },
          startsAt: '2026-01-01T00:00:00Z',
          fingerprint: 'f1',
          status: { state: 'active' },
        },
        { labels: { alertname: 'Quiet' }, status: { state: 'suppressed' } },
      ]),
    };
    const firing = await new Alertmanager(`http://u:p@${base.slice(7)}`, 2000).firing({
      service: 'a"b',
      environment: 'prod',
    });
    expect(firing.map((a) => a.name)).toEqual(['Down']);
    const url = new URL(seen.at(-1)!.url, 'http://x');
    expect(url.searchParams.getAll('filter')).toEqual(['service="a\\"b"', 'environment="prod"']);
    expect(url.searchParams.get('active')).toBe('true');
    expect(url.searchParams.get('silenced')).toBe('false');
    expect(url.searchParams.get('inhibited')).toBe('false');
    expect(seen.at(-1)!.headers.authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
  });

  it('refuses an answer that is not a list of alerts', async () => {
    answers['/api/v2/alerts'] = { status: 200, body: '<html></html>' };
    await expect(new Alertmanager(base, 2000).firing({})).rejects.toThrow(/not a list of alerts/);
    answers['/api/v2/alerts'] = { status: 500, body: '[]' };
    await expect(new Alertmanager(base, 2000).firing({})).rejects.toThrow(/HTTP 500/);
  });
});
