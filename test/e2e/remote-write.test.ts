import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ledgerDoraQueries, meanDurationQuery, selector } from '../../src/backends/remote-write/promql.js';
import { deployctl } from '../helpers/cli.js';
import { TestRepo } from '../helpers/git.js';
import { eventually } from '../helpers/prometheus.js';
import { startProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/pushgateway.js';
import {
  RECEIVERS,
  type RunningReceiver,
  startPrometheusReceiver,
  startVictoriaMetrics,
} from '../helpers/victoria-metrics.js';

const HOUR = 3_600;
const DAY = 86_400;
const workdir = tempDir();
afterAll(() => workdir.remove());

type Vector = { metric: Record<string, string>; value: [number, string] }[];
const byStatus = (vector: Vector) => Object.fromEntries(vector.map((s) => [s.metric.status, Number(s.value[1])]));
const scalarOf = (vector: Vector) => (vector.length === 1 ? Number(vector[0]!.value[1]) : undefined);
/** JSON with object keys sorted, to compare query results whatever their order. */
const canonical = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  );

describe.each(Object.keys(RECEIVERS) as (keyof typeof RECEIVERS)[])('remote-write to %s', (name) => {
  let receiver: RunningReceiver;
  let n = 0;
  /** A group of its own for each test, and a state directory per machine. */
  const group = (what: string) => ({ service: `${what}-${name}-${++n}`, environment: 'prod' });
  const env = (machine: string, writeUrl = receiver.writeUrl, extra: Record<string, string> = {}) => ({
    DEPLOYCTL_REMOTE_WRITE_URL: writeUrl,
    DEPLOYCTL_PROMETHEUS_URL: receiver.url,
    DEPLOYCTL_STATE_DIR: join(workdir.path, name, machine),
    ...extra,
  });
  const target = (g: { service: string; environment: string }) => ['-s', g.service, '-e', g.environment];
  const sel = (g: { service: string; environment: string }) =>
    selector({ job: 'deployctl', service: g.service, environment: g.environment }, '=');
  /**
   * A read that waits for the store to show `expected`, after making all it has taken visible
   * (VictoriaMetrics would show new samples only within seconds).
   */
  const settle = <T>(get: () => Promise<T>, expected: T) =>
    eventually(
      async () => {
        await receiver.flush();
        return get();
      },
      (v) => canonical(v) === canonical(expected),
      20_000,
    );

  beforeAll(async () => {
    receiver = await RECEIVERS[name](join(workdir.path, name));
  });
  afterAll(async () => {
    await receiver?.stop();
  });

  it('20 machines recording one group at once are all counted', async () => {
    const g = group('concurrent');
    const now = Math.floor(Date.now() / 1000);
    const statuses = Array.from({ length: 20 }, (_, i) => (['success', 'failure', 'cancelled'] as const)[i % 3]!);
    const results = await Promise.all(
      statuses.map((status, i) =>
        deployctl(
          [
            'record',
            ...target(g),
            '--status',
            status,
            '--commit',
            `c${i}`,
            '--finished-at',
            String(now - 60 + i),
            '--duration',
            String(i + 1),
          ],
          {
            env: env(`machine-${i}`),
            timeout: 60_000,
          },
        ),
      ),
    );
    for (const r of results) expect(r.exitCode, r.stderr).toBe(0);
    const expected = { success: 7, failure: 7, cancelled: 6 };
    const q = ledgerDoraQueries(sel(g), '1h', String(1 / 24));
    expect(await settle(async () => byStatus(await receiver.query(q.deploymentsByStatus)), expected)).toEqual(expected);
    const durations = byStatus(await receiver.query(meanDurationQuery(sel(g), '1h')));
    // Durations i+1 for i = 0..19, by i % 3.
    expect(durations).toEqual({
      success: (1 + 4 + 7 + 10 + 13 + 16 + 19) / 7,
      failure: (2 + 5 + 8 + 11 + 14 + 17 + 20) / 7,
      cancelled: (3 + 6 + 9 + 12 + 15 + 18) / 6,
    });
  }, 120_000);

  it("sends the spec's headers, and a write whose answer was lost is retried and counted once", async () => {
    const g = group('lost-answer');
    const headers: Record<string, unknown>[] = [];
    let writes = 0;
    const proxy = await startProxy(receiver.url, (request) => {
      if (request.method !== 'POST') return 'forward';
      headers.push({ ...request.headers });
      return ++writes === 1 ? 'drop-response' : 'forward';
    });
    try {
      const result = await deployctl(
        [
          'record',
          ...target(g),
          '--status',
          'success',
          '--commit',
          'abc',
          '--commit-time',
          String(Math.floor(Date.now() / 1000) - 600),
        ],
        {
          env: env('lost', `${proxy.url}/api/v1/write`),
        },
      );
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stdout).toContain(`recorded success of ${g.service} in prod`);
      expect(writes).toBe(2);
      expect(headers[0]).toMatchObject({
        'content-type': 'application/x-protobuf',
        'content-encoding': 'snappy',
        'x-prometheus-remote-write-version': '0.1.0',
      });
      expect(headers[1]).toEqual(headers[0]);
      const q = ledgerDoraQueries(sel(g), '1h', String(1 / 24));
      // Zero is a number: the statuses the group has none of count 0.
      const expected = { success: 1, failure: 0, cancelled: 0 };
      expect(await settle(async () => byStatus(await receiver.query(q.deploymentsByStatus)), expected)).toEqual(
        expected,
      );
      expect(
        existsSync(join(workdir.path, name, 'lost', 'outbox'))
          ? readdirSync(join(workdir.path, name, 'lost', 'outbox')).filter((f) => f.endsWith('.json'))
          : [],
      ).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it('does not retry a 4xx or a "too old sample" 500, keeps the record, and flush sends it later; 503 is retried', async () => {
    const g = group('refused');
    let answer: { status: number; body: string } | 'forward' = { status: 400, body: 'out of order sample' };
    let writes = 0;
    const proxy = await startProxy(receiver.url, (request) => {
      if (request.method !== 'POST') return 'forward';
      writes += 1;
      const now = answer;
      if (typeof now === 'object' && now.status === 503) answer = 'forward';
      return now;
    });
    const machine = env('refused', `${proxy.url}/api/v1/write`);
    const outbox = join(workdir.path, name, 'refused', 'outbox');
    const filesIn = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : []);
    const kept = () => filesIn(outbox);
    const held = () => filesIn(join(outbox, 'held'));
    try {
      const refused = await deployctl(['record', ...target(g), '--status', 'failure', '--commit', 'x1'], {
        env: machine,
      });
      expect(refused.exitCode).toBe(0);
      expect(refused.stderr).toContain('HTTP 400: out of order sample');
      expect(refused.stderr).toContain('out_of_order_time_window');
      expect(writes).toBe(1);
      // Refused for good: kept apart, waiting for a decision, not retried by every later command.
      expect(kept()).toHaveLength(0);
      expect(held()).toHaveLength(1);

      answer = { status: 500, body: 'too old sample' };
      const strict = await deployctl(['record', ...target(g), '--status', 'cancelled', '--commit', 'x2', '--strict'], {
        env: machine,
      });
      expect(strict.exitCode).toBe(1);
      expect(strict.stderr).toContain('HTTP 500: too old sample');
      // This one once, not retried; the record held before is not tried again.
      expect(writes).toBe(2);
      expect(held()).toHaveLength(2);
      const waiting = await deployctl(['flush'], { env: machine });
      expect(waiting.exitCode, waiting.stderr).toBe(0);
      expect(waiting.stderr).toContain('2 record(s) were refused for good');
      expect(writes).toBe(2);

      // The store fixed (its window set): the records go back to the outbox for the same URL.
      const back = await deployctl(
        ['outbox', 'move', '--from', machine.DEPLOYCTL_REMOTE_WRITE_URL, '--to', machine.DEPLOYCTL_REMOTE_WRITE_URL],
        {
          env: machine,
        },
      );
      expect(back.exitCode, back.stderr).toBe(0);
      expect(kept()).toHaveLength(2);
      expect(held()).toHaveLength(0);
      answer = { status: 503, body: 'busy' };
      const flushed = await deployctl(['flush'], { env: machine });
      expect(flushed.exitCode, flushed.stderr).toBe(0);
      expect(flushed.stdout).toContain('sent 2 kept record(s); 0 still kept');
      expect(kept()).toEqual([]);
      const q = ledgerDoraQueries(sel(g), '1h', String(1 / 24));
      const expected = { success: 0, failure: 1, cancelled: 1 };
      expect(await settle(async () => byStatus(await receiver.query(q.deploymentsByStatus)), expected)).toEqual(
        expected,
      );
    } finally {
      await proxy.close();
    }
  });

  it('counts a backfilled record in the window of its own finish time', async () => {
    const g = group('backfill');
    const now = Math.floor(Date.now() / 1000);
    const finishes = [now - 2 * HOUR, now - 3 * DAY, now - 40 * DAY, now - 10 * DAY];
    for (const at of finishes) {
      const result = await deployctl(
        ['record', ...target(g), '--status', 'success', '--commit', `b${at}`, '--finished-at', String(at)],
        { env: env('backfill') },
      );
      expect(result.exitCode, result.stderr).toBe(0);
    }
    const count = async (window: string) =>
      scalarOf(
        await receiver.query(
          `sum(count_over_time(deployctl_deployment_finished_timestamp_seconds${sel(g)}[${window}]))`,
        ),
      );
    expect(await settle(() => count('60d'), 4)).toBe(4);
    expect(await count('1d')).toBe(1);
    expect(await count('7d')).toBe(2);
    expect(await count('30d')).toBe(3);
    // Seen from 20 days ago, only the record of 40 days ago is in the 30 days before.
    expect(
      scalarOf(
        await receiver.query(
          `sum(count_over_time(deployctl_deployment_finished_timestamp_seconds${sel(g)}[30d]))`,
          now - 20 * DAY,
        ),
      ),
    ).toBe(1);
  });

  // On one machine, its journal bridges the store's read lag; with a machine per record, every
  // earlier deployment is read from the store (the test waits until the store shows it).
  it.each(['one machine', 'a machine per record'])(
    "gives the scripted history's DORA numbers, computed by the test, in PromQL, dora --json and status (%s)",
    async (mode) => {
      const g = group('dora');
      const T0 = Math.floor(Date.now() / 1000) - 5 * DAY;
      const repo = new TestRepo(join(workdir.path, name, `repo-${g.service}`));
      let recorded = 0;
      const record = async (args: string[]) => {
        const machine = env(mode === 'one machine' ? `dora-${g.service}` : `dora-${g.service}-${recorded}`);
        const result = await deployctl(['record', ...target(g), ...args], { env: machine, cwd: repo.path });
        expect(result.exitCode, result.stderr).toBe(0);
        recorded += 1;
        if (mode !== 'one machine') {
          const shown = await settle(
            async () =>
              scalarOf(
                await receiver.query(
                  `sum(count_over_time(deployctl_deployment_version_finished_timestamp_seconds${sel(g)}[30d]))`,
                ),
              ),
            recorded,
          );
          expect(shown).toBe(recorded);
        }
        return result;
      };
      const machine = env(`dora-${g.service}`);
      repo.commit('c1', T0 - 3_600);
      await record(['--status', 'success', '--duration', '90', '--finished-at', String(T0)]);
      repo.commit('c2', T0 + 4_000);
      repo.commit('c3', T0 + 5_000);
      await record(['--status', 'failure', '--duration', '30', '--finished-at', String(T0 + 7_000)]);
      await record(['--status', 'failure', '--duration', '40', '--finished-at', String(T0 + 8_000)]);
      const restored = await record([
        '--status',
        'success',
        '--duration',
        '120',
        '--finished-at',
        String(T0 + 9_000),
        '--json',
      ]);
      const restoredJson = JSON.parse(restored.stdout) as { leadTimes: number[]; timeToRestore: number };
      expect([...restoredJson.leadTimes].sort()).toEqual([4_000, 5_000]);
      expect(restoredJson.timeToRestore).toBe(2_000);
      await record(['--status', 'cancelled', '--duration', '5', '--finished-at', String(T0 + 9_500)]);

      // The oracle, from the script above: lead times 3600 (c1, the first deployment), then 5000
      // (c2) and 4000 (c3), brought by the success that ended the failing streak of 7000-9000.
      const oracle = {
        deployments: { success: 2, failure: 2, cancelled: 1 },
        frequency: 2 / 30,
        changeFailureRate: 2 / 4,
        leadTimeMean: (3_600 + 5_000 + 4_000) / 3,
        timeToRestoreMean: 2_000,
        // Failed changes: the two failures; recovered by the success at 9000 (2000 s and 1000 s);
        // rework: the failure at 8000 and the success at 9000, made while a failed change was unrecovered.
        failedChanges: 2,
        recoveryMean: (2_000 + 1_000) / 2,
        rework: 2,
      };
      const q = ledgerDoraQueries(sel(g), '30d', '30');
      expect(
        await settle(async () => byStatus(await receiver.query(q.deploymentsByStatus)), oracle.deployments),
      ).toEqual(oracle.deployments);
      expect(scalarOf(await receiver.query(q.deploymentFrequencyPerDay))).toBeCloseTo(oracle.frequency, 12);
      expect(scalarOf(await receiver.query(q.changeFailureRate))).toBe(oracle.changeFailureRate);
      expect(scalarOf(await receiver.query(q.leadTimeMean))).toBe(oracle.leadTimeMean);
      expect(scalarOf(await receiver.query(q.timeToRestoreMean))).toBe(oracle.timeToRestoreMean);
      expect(scalarOf(await receiver.query(q.leadTimeMedian))).toBeGreaterThan(3_600);

      for (const query of [{}, { DEPLOYCTL_PROMETHEUS_URL: '' }]) {
        // With the query API given, and derived from the remote-write URL.
        const dora = await deployctl(['dora', ...target(g), '--json'], { env: { ...machine, ...query } });
        expect(dora.exitCode, dora.stderr).toBe(0);
        const row = (JSON.parse(dora.stdout) as { window: string; rows: Record<string, unknown>[] }).rows;
        expect(row).toEqual([
          {
            job: 'deployctl',
            ...g,
            deployments: oracle.deployments,
            // The ledger tells no rollbacks apart: none counted, and both failure rates are the plain one.
            rollbacks: 0,
            deploymentFailureRate: oracle.changeFailureRate,
            deploymentFrequencyPerDay: { value: expect.closeTo(oracle.frequency, 12), band: 'medium' },
            leadTimeSeconds: { value: oracle.leadTimeMean, band: 'elite' },
            changeFailureRate: { value: oracle.changeFailureRate, band: 'low' },
            timeToRestoreSeconds: { value: oracle.timeToRestoreMean, band: 'elite' },
            failedChanges: oracle.failedChanges,
            failedChangesByReason: { failure: oracle.failedChanges, rollback: 0, verification: 0, incident: 0 },
            reworkDeployments: oracle.rework,
            failedDeploymentRecoveryTimeSeconds: { value: oracle.recoveryMean, band: 'elite' },
            deploymentReworkRate: { value: oracle.rework / 4, band: null },
          },
        ]);
      }

      const status = await deployctl(['status', ...target(g), '--json'], { env: machine });
      expect(status.exitCode, status.stderr).toBe(0);
      const head = repo.git('rev-parse', 'HEAD');
      expect(JSON.parse(status.stdout)).toEqual([
        {
          job: 'deployctl',
          ...g,
          version: head,
          commit: head,
          status: 'cancelled',
          finishedAt: T0 + 9_500,
          durationSeconds: null,
          inProgress: false,
          startedAt: null,
          deployments: oracle.deployments,
          rollbacks: 0,
          failedChanges: oracle.failedChanges,
          openIncidents: { count: 0, since: null },
          latestVerification: null,
        },
      ]);
    },
    120_000,
  );

  it('times a deployment started on one machine and finished on another from the store; status shows it in progress; delete is refused', async () => {
    const g = group('start-finish');
    const now = Math.floor(Date.now() / 1000);
    const started = await deployctl(['start', ...target(g), '--commit', 's1', '--started-at', String(now - 120)], {
      env: env('starter'),
    });
    expect(started.exitCode, started.stderr).toBe(0);
    const statusRow = async () => {
      const row = (
        JSON.parse((await deployctl(['status', ...target(g), '--json'], { env: env('starter') })).stdout) as {
          inProgress: boolean;
          startedAt: number | null;
        }[]
      )[0];
      return { inProgress: row?.inProgress, startedAt: row?.startedAt };
    };
    // The start of the deployment in progress, exactly: the start sample's value.
    expect(await settle(statusRow, { inProgress: true, startedAt: now - 120 })).toEqual({
      inProgress: true,
      startedAt: now - 120,
    });
    const table = await deployctl(['status', ...target(g)], { env: env('starter') });
    expect(table.stdout).toContain(
      `(deploying since ${new Date((now - 120) * 1000).toISOString().replace('.000Z', 'Z')}, `,
    );

    const finished = await deployctl(
      ['finish', ...target(g), '--status', 'success', '--commit', 's1', '--finished-at', String(now - 20), '--json'],
      { env: env('finisher') },
    );
    expect(finished.exitCode, finished.stderr).toBe(0);
    expect(JSON.parse(finished.stdout)).toMatchObject({ recorded: true, status: 'success', durationSeconds: 100 });
    expect(await settle(statusRow, { inProgress: false, startedAt: null })).toEqual({
      inProgress: false,
      startedAt: null,
    });
    expect(
      scalarOf(await receiver.query(`sum(sum_over_time(deployctl_deployment_finished_duration_seconds${sel(g)}[1h]))`)),
    ).toBe(100);

    const step = await deployctl(['step', 'migrate', ...target(g), '--', 'true'], { env: env('finisher') });
    expect(step.exitCode, step.stderr).toBe(0);
    const steps = await settle(
      async () =>
        (await receiver.query(`count_over_time(deployctl_step_finished_duration_seconds${sel(g)}[1h])`)).map((r) => [
          r.metric.step,
          r.metric.status,
          r.value[1],
        ]),
      [['migrate', 'success', '1']],
    );
    expect(steps).toEqual([['migrate', 'success', '1']]);

    const deleted = await deployctl(['delete', ...target(g), '--yes'], { env: env('finisher') });
    expect(deleted.exitCode).toBe(1);
    expect(deleted.stderr).toContain('delete is not available with --remote-write');
    expect(deleted.stderr).toContain('/api/v1/admin/tsdb/delete_series');
  }, 90_000);

  it("doctor finds the endpoint, the query API and the store's settings for backfill and retries", async () => {
    const g = group('doctor');
    const result = await deployctl(['doctor', ...target(g), '--json'], { env: env('doctor') });
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as {
      checks: { ok: boolean; what: string }[];
      wouldPush: string;
      problems: number;
    };
    expect(report.problems).toBe(0);
    const whats = report.checks.map((c) => c.what).join('\n');
    expect(whats).toContain(`remote-write ${receiver.writeUrl} takes an empty write request`);
    expect(whats).toContain(
      name === 'prometheus'
        ? 'Prometheus takes samples up to 400d old'
        : 'VictoriaMetrics deduplicates retried samples (-dedup.minScrapeInterval=1ms)',
    );
    expect(report.wouldPush).toContain(
      `deployctl_deployment_finished_timestamp_seconds{environment="prod", job="deployctl", service="${g.service}", status="success"}`,
    );
    // VictoriaMetrics takes old samples: a Prometheus out-of-order window is none of its business.
    if (name === 'victoria-metrics') expect(result.stdout).not.toMatch(/out.of.order/i);
  });

  it('--dry-run shows the request and sends nothing', async () => {
    const g = group('dry-run');
    const result = await deployctl(
      ['record', ...target(g), '--status', 'success', '--commit', 'd1', '--finished-at', '1767225600', '--dry-run'],
      { env: env('dry-run') },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain(
      `POST ${receiver.writeUrl}\ncontent-type: application/x-protobuf\ncontent-encoding: snappy\nx-prometheus-remote-write-version: 0.1.0\n`,
    );
    expect(result.stdout).toMatch(
      new RegExp(
        `deployctl_deployment_finished_timestamp_seconds\\{environment="prod", job="deployctl", service="${g.service}", status="success"\\} 1767225600 (1767225599\\d{3}|1767225600000)\\n`,
      ),
    );
    expect(existsSync(join(workdir.path, name, 'dry-run'))).toBe(false);
    expect(await receiver.query(`count_over_time({service="${g.service}"}[400d])`)).toEqual([]);
  });

  it('sends the token and the tenant header with every write and read, and never prints the token', async () => {
    const g = group('auth');
    const seen: { method: string; authorization?: string; tenant?: string }[] = [];
    const proxy = await startProxy(receiver.url, (request) => {
      seen.push({
        method: request.method ?? '',
        authorization: request.headers.authorization,
        tenant: request.headers['x-scope-orgid'] as string | undefined,
      });
      return 'forward';
    });
    try {
      const machine = env('auth', `${proxy.url}/api/v1/write`, {
        DEPLOYCTL_PROMETHEUS_URL: proxy.url,
        DEPLOYCTL_PUSHGATEWAY_TOKEN: 's3cr3t-token',
      });
      const result = await deployctl(
        ['record', ...target(g), '--status', 'success', '--commit', 'a1', '--header', 'X-Scope-OrgID: team-a', '-v'],
        { env: machine },
      );
      expect(result.exitCode, result.stderr).toBe(0);
      expect(seen.map((r) => r.method).sort()).toEqual(['GET', 'POST']);
      for (const request of seen)
        expect(request).toMatchObject({ authorization: 'Bearer s3cr3t-token', tenant: 'team-a' });
      expect(result.stdout + result.stderr).not.toContain('s3cr3t');
    } finally {
      await proxy.close();
    }
  });

  it("run marks the deployment started, records how it ended and exits with the command's code; any UTF-8 survives", async () => {
    const g = { service: `shop/api ✓ "q" \\ ü ${name}`, environment: 'prod' };
    const result = await deployctl(['run', ...target(g), '--commit', 'r1', '--', 'sh', '-c', 'sleep 1.5; exit 3'], {
      env: env('run'),
    });
    expect(result.exitCode).toBe(3);
    expect(result.stderr).toContain(`recorded failure of ${g.service} in prod`);
    const counts = async () => {
      const started = scalarOf(
        await receiver.query(`sum(count_over_time(deployctl_deployment_started_timestamp_seconds${sel(g)}[1h]))`),
      );
      const failed = byStatus(
        await receiver.query(
          `sum by (status) (count_over_time(deployctl_deployment_finished_timestamp_seconds${sel(g)}[1h]))`,
        ),
      );
      return { started, failed };
    };
    expect(await settle(counts, { started: 1, failed: { failure: 1 } })).toEqual({
      started: 1,
      failed: { failure: 1 },
    });
    const duration = scalarOf(
      await receiver.query(`sum(sum_over_time(deployctl_deployment_finished_duration_seconds${sel(g)}[1h]))`),
    )!;
    expect(duration).toBeGreaterThanOrEqual(1.5);
    expect(duration).toBeLessThan(10);
    const status = await deployctl(['status', ...target(g), '--json'], { env: env('run') });
    expect(JSON.parse(status.stdout)).toMatchObject([
      { service: g.service, status: 'failure', inProgress: false, deployments: { failure: 1 } },
    ]);
  }, 60_000);

  it.runIf(name === 'prometheus')(
    'takes Prometheus\'s own "too old sample" 500 as permanent: sent once, kept, with how to fix it',
    async () => {
      const g = group('too-old');
      let writes = 0;
      const proxy = await startProxy(receiver.url, (request) => {
        if (request.method === 'POST') writes += 1;
        return 'forward';
      });
      try {
        const machine = env('too-old', `${proxy.url}/api/v1/write`);
        const result = await deployctl(
          [
            'record',
            ...target(g),
            '--status',
            'success',
            '--commit',
            'o1',
            '--finished-at',
            String(Math.floor(Date.now() / 1000) - 500 * DAY),
          ],
          { env: machine },
        );
        expect(result.exitCode, result.stderr).toBe(0);
        expect(result.stderr).toMatch(/HTTP 500: .*too old sample/);
        expect(result.stderr).toContain('out_of_order_time_window');
        expect(writes).toBe(1);
        // Kept apart, waiting for a decision (deployctl outbox), not retried by every later command.
        expect(
          readdirSync(join(workdir.path, name, 'too-old', 'outbox', 'held')).filter((f) => f.endsWith('.json')),
        ).toHaveLength(1);
      } finally {
        await proxy.close();
      }
    },
  );
});

describe('remote-write to a Prometheus without an out-of-order window', () => {
  let receiver: RunningReceiver;
  beforeAll(async () => {
    receiver = await startPrometheusReceiver(join(workdir.path, 'no-window'), { outOfOrderWindow: null });
  });
  afterAll(async () => {
    await receiver?.stop();
  });

  it("doctor says how to enable the window; a record older than the series' newest is refused, not retried, and kept", async () => {
    const env = {
      DEPLOYCTL_REMOTE_WRITE_URL: receiver.writeUrl,
      DEPLOYCTL_STATE_DIR: join(workdir.path, 'no-window', 'state'),
    };
    const doctor = await deployctl(['doctor', '-s', 'api', '-e', 'prod', '--json'], { env });
    expect(doctor.exitCode).toBe(1);
    const report = JSON.parse(doctor.stdout) as { checks: { ok: boolean; what: string; fix?: string }[] };
    expect(report.checks.filter((c) => !c.ok)).toEqual([
      {
        ok: false,
        what: 'Prometheus has no out-of-order window: it refuses a record older than the newest one of its series',
        fix: expect.stringContaining('storage.tsdb.out_of_order_time_window'),
      },
    ]);

    const now = Math.floor(Date.now() / 1000);
    const first = await deployctl(
      ['record', '-s', 'api', '-e', 'prod', '--status', 'success', '--commit', 'n1', '--finished-at', String(now)],
      { env },
    );
    expect(first.exitCode, first.stderr).toBe(0);
    const late = await deployctl(
      [
        'record',
        '-s',
        'api',
        '-e',
        'prod',
        '--status',
        'success',
        '--commit',
        'n0',
        '--finished-at',
        String(now - 600),
        '--strict',
      ],
      { env },
    );
    expect(late.exitCode).toBe(1);
    expect(late.stderr).toMatch(/HTTP 400: .*out of order sample/);
    expect(late.stderr).toContain('storage.tsdb.out_of_order_time_window');
    expect(
      readdirSync(join(env.DEPLOYCTL_STATE_DIR, 'outbox', 'held')).filter((f) => f.endsWith('.json')),
    ).toHaveLength(1);
    expect(
      scalarOf(
        await receiver.query(
          'sum(count_over_time(deployctl_deployment_finished_timestamp_seconds{service="api"}[1h]))',
        ),
      ),
    ).toBe(1);
  });
});

describe("doctor and VictoriaMetrics' deduplication", () => {
  type Report = { checks: { ok: boolean; warning?: boolean; what: string; fix?: string }[]; problems: number };
  const doctor = async (dedup: string | null) => {
    const dir = join(workdir.path, `dedup-${dedup ?? 'none'}`);
    const receiver = await startVictoriaMetrics(dir, { dedup });
    try {
      const env = { DEPLOYCTL_REMOTE_WRITE_URL: receiver.writeUrl, DEPLOYCTL_STATE_DIR: join(dir, 'state') };
      const result = await deployctl(['doctor', '-s', 'api', '-e', 'prod', '--json', '--timeout', '5'], { env });
      return { ...result, report: JSON.parse(result.stdout) as Report };
    } finally {
      await receiver.stop();
    }
  };

  it('started without -dedup.minScrapeInterval (absent from /flags: no deduplication), doctor fails with the fix and says nothing of an out-of-order window', async () => {
    const { exitCode, stdout, report } = await doctor(null);
    expect(exitCode).toBe(1);
    expect(report.checks.filter((c) => !c.ok)).toEqual([
      {
        ok: false,
        what: 'VictoriaMetrics keeps a retried sample twice (no deduplication: -dedup.minScrapeInterval is not set)',
        fix: expect.stringContaining('-dedup.minScrapeInterval=1ms'),
      },
    ]);
    expect(stdout).not.toMatch(/out.of.order/i);
  });

  it('with an interval longer than a millisecond, doctor warns that deployments within it count once', async () => {
    const { exitCode, stdout, report } = await doctor('1s');
    expect(exitCode, stdout).toBe(0);
    expect(report.problems).toBe(0);
    expect(report.checks.filter((c) => !c.ok)).toEqual([
      {
        ok: false,
        warning: true,
        what: expect.stringContaining('two deployments of one group and status that finish within it count once'),
        fix: expect.stringContaining('-dedup.minScrapeInterval=1ms'),
      },
    ]);
    expect(stdout).not.toMatch(/out.of.order/i);
  });
});
