import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployctl, scrape } from '../helpers/cli.js';
import { select, value } from '../helpers/exposition.js';
import { eventually, type RunningPrometheus, startPrometheus } from '../helpers/prometheus.js';
import { type ProxyAction, startProxy, type TestProxy } from '../helpers/proxy.js';
import { type RunningServer, startPushgateway, tempDir } from '../helpers/pushgateway.js';

/**
 * Continuing a group's totals from Prometheus after the gateway lost them, against real gateways
 * and a real Prometheus scraping them with the example scrape job (examples/prometheus/prometheus.yml).
 */

const workdir = tempDir();
afterAll(() => workdir.remove());

const successes = async (gatewayUrl: string, service: string) => {
  const found = select(await scrape(gatewayUrl), 'deployctl_deployments_total', { service, status: 'success' });
  return found.length ? value(found, 'deployctl_deployments_total', { service, status: 'success' }) : 0;
};

/** Records one successful deployment; returns what deployctl said. */
async function record(service: string, env: Record<string, string>, extra: string[] = []) {
  const result = await deployctl(['record', '-s', service, '-e', 'prod', '--status', 'success', ...extra], {
    env,
    cwd: workdir.path,
  });
  expect(result.exitCode, result.stderr).toBe(0);
  return result;
}

/** The record sequence Prometheus last scraped of a group from the gateway at `host`. */
const scrapedSequence = (prometheus: RunningPrometheus, service: string, host: string) => async () =>
  (
    await prometheus.query(
      `deployctl_records_applied_total{service=${JSON.stringify(service)}, pushgateway=${JSON.stringify(host)}}`,
    )
  ).map((r) => Number(r.value[1]));

describe('two gateways scraped by one Prometheus', () => {
  let a: RunningServer;
  let b: RunningServer;
  let prometheus: RunningPrometheus;
  beforeAll(async () => {
    [a, b] = await Promise.all([startPushgateway(), startPushgateway()]);
    const dir = join(workdir.path, 'two');
    mkdirSync(dir);
    prometheus = await startPrometheus(dir, [a.url, b.url]);
  });
  afterAll(async () => {
    await prometheus?.stop();
    await a?.stop();
    await b?.stop();
  });

  it("each continues only its own totals; doctor on B reports what B lost, never A's groups nor a deleted one", async () => {
    const hostA = new URL(a.url).host;
    const hostB = new URL(b.url).host;
    const on = (gateway: RunningServer, name: string) => ({
      DEPLOYCTL_PUSHGATEWAY_URL: gateway.url,
      DEPLOYCTL_STATE_DIR: join(workdir.path, `state-${name}`),
      DEPLOYCTL_PROMETHEUS_URL: prometheus.url,
    });
    const envA = on(a, 'a');
    let envB = on(b, 'b');
    for (let i = 0; i < 3; i++) await record('two/web', envA);
    await record('two/only-a', envA);
    for (let i = 0; i < 2; i++) await record('two/api', envB);
    await record('two/retired', envB);
    expect(
      await eventually(scrapedSequence(prometheus, 'two/web', hostA), (v) => v[0] === 3),
      'Prometheus scraped A',
    ).toEqual([3]);
    expect(await eventually(scrapedSequence(prometheus, 'two/api', hostB), (v) => v[0] === 2)).toEqual([2]);

    // B's first record of a group that A holds: B's own count, not A's totals.
    const first = await record('two/web', envB);
    expect(first.stderr).not.toContain('lower totals');
    expect(await successes(b.url, 'two/web')).toBe(1);
    expect(await successes(a.url, 'two/web')).toBe(3);

    // A group retired on B, and scraped without it while B ran on.
    const deleted = await deployctl(['delete', '-s', 'two/retired', '-e', 'prod', '--yes'], {
      env: envB,
      cwd: workdir.path,
    });
    expect(deleted.exitCode, deleted.stderr).toBe(0);
    expect(
      await eventually(
        () => prometheus.query('deployctl_records_applied_total{service="two/retired"}'),
        (r) => r.length === 0,
      ),
    ).toEqual([]);
    expect(await eventually(scrapedSequence(prometheus, 'two/web', hostB), (v) => v[0] === 1)).toEqual([1]);
    const before = await deployctl(['doctor', '--prometheus', prometheus.url], { env: envB, cwd: workdir.path });
    expect(before.stdout).toContain('the series Prometheus scrapes from this gateway carry pushgateway=');
    expect(before.stdout).not.toContain('hold fewer deployments');

    // B restarts without persistence: it loses two/api (2) and two/web (1).
    await b.stop();
    b = await startPushgateway([], { port: b.port });
    envB = on(b, 'b');
    const doctor = await deployctl(['doctor', '--prometheus', prometheus.url], { env: envB, cwd: workdir.path });
    expect(doctor.stdout).toMatch(
      /2 group\(s\) hold fewer deployments on the gateway than Prometheus saw before the gateway restarted at \S+ \(the gateway lost them: it restarted without persistence, or from an old file\): (two\/api in prod, two\/web in prod|two\/web in prod, two\/api in prod)\n/,
    );
    expect(doctor.stdout).not.toContain('two/only-a');
    expect(doctor.stdout).not.toContain('two/retired');
    expect(doctor.exitCode).not.toBe(0);

    const api = await record('two/api', envB);
    expect(api.stderr).toContain('the gateway held lower totals for two/api in prod than Prometheus last scraped');
    expect(await successes(b.url, 'two/api')).toBe(3);
    await record('two/web', envB);
    expect(await successes(b.url, 'two/web')).toBe(2);
    expect(value(await scrape(b.url), 'deployctl_records_applied_total', { service: 'two/web' })).toBe(2);
    // The retired group starts again from nothing; A is untouched.
    await record('two/retired', envB);
    expect(await successes(b.url, 'two/retired')).toBe(1);
    await record('two/web', envA);
    expect(await successes(a.url, 'two/web')).toBe(4);
    expect(await successes(a.url, 'two/only-a')).toBe(1);
  }, 120_000);
});

describe('a Prometheus that answers what no gateway holds, or never answers', () => {
  let gateway: RunningServer;
  let prometheus: RunningPrometheus;
  let proxy: TestProxy | undefined;
  beforeAll(async () => {
    gateway = await startPushgateway();
    const dir = join(workdir.path, 'faults');
    mkdirSync(dir);
    prometheus = await startPrometheus(dir, gateway.url);
  });
  afterAll(async () => {
    await proxy?.close();
    await prometheus?.stop();
    await gateway?.stop();
  });

  /** A proxy in front of the real Prometheus that rewrites the answer to the query of a group's series. */
  const rewriting = (change: (result: { metric: Record<string, string>; value: [number, string] }) => void) =>
    startProxy(prometheus.url, (request): ProxyAction => {
      const query = new URL(request.url ?? '/', 'http://proxy').searchParams.get('query') ?? '';
      if (!query.includes('__name__=~"deployctl_.+"')) return 'forward';
      return {
        rewrite: (body) => {
          const answer = JSON.parse(body) as { data: { result: Parameters<typeof change>[0][] } };
          for (const result of answer.data.result) change(result);
          return JSON.stringify(answer);
        },
      };
    });

  it('refuses 1e300 and series of another job with a warning, and a hanging Prometheus costs a record at most a third of --timeout', async () => {
    const service = 'faults/api';
    const stateDir = join(workdir.path, 'state-faults');
    const env = (prometheusUrl: string) => ({
      DEPLOYCTL_PUSHGATEWAY_URL: gateway.url,
      DEPLOYCTL_STATE_DIR: stateDir,
      DEPLOYCTL_PROMETHEUS_URL: prometheusUrl,
    });
    for (let i = 0; i < 5; i++) await record(service, env(prometheus.url));
    const host = new URL(gateway.url).host;
    expect(await eventually(scrapedSequence(prometheus, service, host), (v) => v[0] === 5)).toEqual([5]);
    await gateway.stop();
    gateway = await startPushgateway([], { port: gateway.port });
    // Kept records: none waits to be sent, and the one stored last waits in sent/ under a whole sequence
    // number until the next record of its group confirms it.
    const kept = () =>
      readdirSync(join(stateDir, 'outbox'), { recursive: true })
        .map(String)
        .filter((f) => f.endsWith('.json'));
    const keptOk = (sequence: number) =>
      expect(kept().map((f) => f.replace(/^sent\/.*(\.s[^.]+\.json)$/, 'sent/$1'))).toEqual([
        `sent/.s${sequence}.json`,
      ]);

    proxy = await rewriting((result) => {
      if (result.metric.__name__ === 'deployctl_deployments_total' && result.metric.status === 'success')
        result.value[1] = '1e300';
    });
    const huge = await record(service, env(proxy.url));
    expect(huge.stderr).toContain(
      `deployctl: warning: not continuing the totals of ${service} in prod from Prometheus at ${proxy.url}/: it answered deployctl_deployments_total{status="success"} = 1e+300, which no total can be (a whole number from 0 to 1e9)`,
    );
    expect(huge.stderr).toContain('The totals go on from what the gateway holds');
    expect(await successes(gateway.url, service)).toBe(1);
    keptOk(1);
    await proxy.close();

    proxy = await rewriting((result) => {
      result.metric.job = 'other';
    });
    const other = await record(service, env(proxy.url));
    expect(other.stderr).toContain('is a series of another job or group (job "other"');
    expect(other.stderr).toContain(`deployctl: warning: not continuing the totals of ${service} in prod`);
    expect(await successes(gateway.url, service)).toBe(2);
    await proxy.close();

    proxy = await startProxy(prometheus.url, () => 'hang');
    const started = performance.now();
    const hanging = await record(service, env(proxy.url), ['--timeout', '6']);
    const wallMs = performance.now() - started;
    expect(hanging.stderr).toContain(
      `could not ask Prometheus whether the gateway lost totals of ${service} in prod: Prometheus did not answer within 2.0 s, its share of --timeout (a third)`,
    );
    expect(await successes(gateway.url, service)).toBe(3);
    keptOk(3);
    expect(wallMs).toBeLessThan(6_000);
    console.log(`a record with a hanging Prometheus and --timeout 6 took ${Math.round(wallMs)} ms`);
    await proxy.close();
    proxy = undefined;

    // The real Prometheus: the totals continue from the five it scraped before the restart.
    const continued = await record(service, env(prometheus.url));
    expect(continued.stderr).toContain(`the gateway held lower totals for ${service} in prod`);
    expect(continued.stderr).not.toContain('warning');
    expect(await successes(gateway.url, service)).toBe(6);
    expect(value(await scrape(gateway.url), 'deployctl_records_applied_total', { service })).toBe(6);
  }, 120_000);
});
