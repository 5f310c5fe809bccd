import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ledgerDoraQueries, selector } from '../../src/backends/remote-write/promql.js';
import { deployctl, deployments } from '../helpers/cli.js';
import { eventually } from '../helpers/prometheus.js';
import { type RunningServer, startPushgateway, tempDir } from '../helpers/pushgateway.js';
import { type RunningReceiver, startPrometheusReceiver, startVictoriaMetrics } from '../helpers/victoria-metrics.js';

/**
 * Records their target refuses for good (a URL ending in /metrics, https:// to a plain-HTTP
 * gateway, a Prometheus port given as the gateway, a store's "out of order"/"out of bounds") wait
 * apart in outbox/held/: flush exits 0 and says what waits; `outbox list` shows them with the
 * reason; `outbox move` sends them to the corrected URL, exactly once; `outbox drop --yes` empties it.
 */
const workdir = tempDir();
afterAll(() => workdir.remove());
const json = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : []);

describe('records refused for good, on the Pushgateway', () => {
  let gateway: RunningServer;
  let prometheus: RunningReceiver;
  beforeAll(async () => {
    [gateway, prometheus] = await Promise.all([
      startPushgateway(),
      startPrometheusReceiver(join(workdir.path, 'prometheus')),
    ]);
  });
  afterAll(async () => {
    await Promise.all([gateway?.stop(), prometheus?.stop()]);
  });

  const cases: [string, () => string, RegExp][] = [
    ['a URL ending in /metrics', () => `${gateway.url}/metrics`, /HTTP 404/],
    ['https:// to a plain-HTTP gateway', () => gateway.url.replace('http://', 'https://'), /EPROTO|SSL|wrong version/i],
    ['the Prometheus port as the gateway', () => prometheus.url, /HTTP 404|HTTP 405/],
  ];
  let n = 0;
  for (const [what, badUrl, reason] of cases) {
    it(`${what}: held with its reason, flush exits 0, move delivers exactly once, drop empties`, async () => {
      const service = `held-${++n}`;
      const stateDir = join(workdir.path, service);
      const bad = badUrl();
      const env = { DEPLOYCTL_PUSHGATEWAY_URL: bad, DEPLOYCTL_STATE_DIR: stateDir };
      const record = (status: string) =>
        deployctl(['record', '-s', service, '-e', 'prod', '--status', status, '--timeout', '5'], { env });
      for (const status of ['success', 'success', 'failure']) {
        const result = await record(status);
        expect(result.exitCode, result.stderr).toBe(0);
        expect(result.stderr).toContain('deployctl outbox');
      }
      expect(json(join(stateDir, 'outbox'))).toEqual([]);
      expect(json(join(stateDir, 'outbox', 'held'))).toHaveLength(3);

      const flushed = await deployctl(['flush'], { env });
      expect(flushed.exitCode, flushed.stderr).toBe(0);
      expect(flushed.stderr).toContain('3 record(s) were refused for good by their target and wait for a decision');
      expect(flushed.stderr).toContain('deployctl outbox list');

      const doctor = await deployctl(['doctor', '-s', service, '-e', 'prod', '--json', '--timeout', '3'], { env });
      const checks = (JSON.parse(doctor.stdout) as { checks: { ok: boolean; what: string; fix?: string }[] }).checks;
      const held = checks.find((c) => c.what.includes('refused for good'));
      expect(held?.ok).toBe(false);
      expect(held?.fix).toContain('deployctl outbox move --from');
      expect(held?.fix).not.toMatch(/^deployctl flush/);

      const listed = await deployctl(['outbox', 'list', '--json'], { env });
      expect(listed.exitCode, listed.stderr).toBe(0);
      const records = (
        JSON.parse(listed.stdout) as { records: { url: string; waitsForDecision: boolean; reason: string }[] }
      ).records;
      expect(records).toHaveLength(3);
      for (const r of records) {
        expect(r.url.replace(/\/$/, '')).toBe(bad);
        expect(r.waitsForDecision).toBe(true);
        expect(r.reason).toMatch(reason);
      }
      const text = await deployctl(['outbox', 'list'], { env });
      expect(text.stdout).toContain('3 refused for good, waiting for a decision');

      // Nothing reached the real gateway meanwhile.
      expect(await deployments(gateway.url, service, 'success')).toBe(0);

      const moved = await deployctl(['outbox', 'move', '--from', bad, '--to', gateway.url], { env });
      expect(moved.exitCode, moved.stderr).toBe(0);
      expect(moved.stdout).toContain('moved 3 kept record(s)');
      const good = { ...env, DEPLOYCTL_PUSHGATEWAY_URL: gateway.url };
      for (let i = 0; i < 2; i++) {
        const sent = await deployctl(['flush'], { env: good });
        expect(sent.exitCode, sent.stderr).toBe(0);
      }
      expect(await deployments(gateway.url, service, 'success')).toBe(2);
      expect(await deployments(gateway.url, service, 'failure')).toBe(1);
      expect(json(join(stateDir, 'outbox'))).toEqual([]);
      expect(json(join(stateDir, 'outbox', 'held'))).toEqual([]);

      // Another one held, then dropped: without --yes and without a terminal, exit 2 and nothing dropped.
      expect((await record('cancelled')).exitCode).toBe(0);
      expect(json(join(stateDir, 'outbox', 'held'))).toHaveLength(1);
      const unasked = await deployctl(['outbox', 'drop', '--target', bad], { env, input: '' });
      expect(unasked.exitCode).toBe(2);
      expect(unasked.stderr).toContain('without --yes');
      expect(json(join(stateDir, 'outbox', 'held'))).toHaveLength(1);
      const dropped = await deployctl(['outbox', 'drop', '--target', bad, '--yes'], { env });
      expect(dropped.exitCode, dropped.stderr).toBe(0);
      expect(json(join(stateDir, 'outbox', 'held'))).toEqual([]);
      expect((await deployctl(['outbox', 'list'], { env })).stdout).toContain('the outbox is empty');
      expect(await deployments(gateway.url, service, 'cancelled')).toBe(0);
    });
  }

  it('bad command lines: exit 2, nothing changed', async () => {
    const env = { DEPLOYCTL_STATE_DIR: join(workdir.path, 'usage') };
    for (const args of [
      ['outbox', 'nonsense'],
      ['outbox', 'move', '--from', 'http://a'],
      ['outbox', 'move', '--from', 'http://a', '--to', 'ftp://b'],
      ['outbox', 'move', '--from', 'http://a', '--to', 'http://user:secret@b'],
    ]) {
      const result = await deployctl(args, { env });
      expect(result.exitCode, args.join(' ')).toBe(2);
      expect(result.stderr).not.toContain('secret');
    }
  });
});

describe('records refused for good, on remote-write', () => {
  let strict: RunningReceiver;
  let good: RunningReceiver;
  beforeAll(async () => {
    [strict, good] = await Promise.all([
      startPrometheusReceiver(join(workdir.path, 'strict'), { outOfOrderWindow: null }),
      startVictoriaMetrics(join(workdir.path, 'vm')),
    ]);
  });
  afterAll(async () => {
    await Promise.all([strict?.stop(), good?.stop()]);
  });

  it('"out of order" and "out of bounds": held, flush exits 0, move to a store that takes them delivers each once', async () => {
    const stateDir = join(workdir.path, 'rw-state');
    const env = { DEPLOYCTL_REMOTE_WRITE_URL: strict.writeUrl, DEPLOYCTL_STATE_DIR: stateDir };
    const now = Math.floor(Date.now() / 1000);
    const record = (status: string, at: number) =>
      deployctl(
        ['record', '-s', 'api', '-e', 'prod', '--status', status, '--commit', `c${at}`, '--finished-at', String(at)],
        { env },
      );
    expect((await record('success', now)).exitCode).toBe(0);
    const order = await record('success', now - 600);
    expect(order.exitCode, order.stderr).toBe(0);
    expect(order.stderr).toMatch(/out of order/);
    const bounds = await record('success', now - 3 * 86_400);
    expect(bounds.exitCode, bounds.stderr).toBe(0);
    expect(bounds.stderr).toMatch(/out of bounds|too old|out of order/);
    expect(json(join(stateDir, 'outbox', 'held'))).toHaveLength(2);
    expect(json(join(stateDir, 'outbox'))).toEqual([]);

    const flushed = await deployctl(['flush'], { env });
    expect(flushed.exitCode, flushed.stderr).toBe(0);
    expect(flushed.stderr).toContain('2 record(s) were refused for good');
    const listed = JSON.parse((await deployctl(['outbox', 'list', '--json'], { env })).stdout) as {
      records: { reason: string }[];
    };
    expect(listed.records.map((r) => r.reason).join('\n')).toMatch(/out of order/);

    const moved = await deployctl(['outbox', 'move', '--from', strict.writeUrl, '--to', good.writeUrl], { env });
    expect(moved.exitCode, moved.stderr).toBe(0);
    const toGood = { ...env, DEPLOYCTL_REMOTE_WRITE_URL: good.writeUrl };
    for (let i = 0; i < 2; i++) expect((await deployctl(['flush'], { env: toGood })).exitCode).toBe(0);
    expect(json(join(stateDir, 'outbox'))).toEqual([]);
    expect(json(join(stateDir, 'outbox', 'held'))).toEqual([]);
    const q = ledgerDoraQueries(selector({ job: 'deployctl', service: 'api', environment: 'prod' }, '='), '30d', '30');
    const expected = { failure: 0, cancelled: 0, success: 2 };
    const byStatus = await eventually(
      async () => {
        await good.flush();
        const vector = await good.query(q.deploymentsByStatus);
        return Object.fromEntries(vector.map((s) => [s.metric.status, Number(s.value[1])]));
      },
      (v) => v.success === 2,
      20_000,
    );
    expect(byStatus).toEqual(expected);
  });
});
