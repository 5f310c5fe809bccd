/**
 * Failed changes as DORA counts them (SPEC.md, Definitions), end to end with the built CLI: a
 * scripted history of deployments (a failed deploy then a fix; a rollback; a failure, a retry that
 * fails and a fix; a failed deploy recorded after its fix) recorded to a real Pushgateway, a real Prometheus remote-write receiver and a
 * real VictoriaMetrics, and the failed changes by reason, the recovery times and the rework
 * count (also of a failed deploy whose record is sent after its fix) read back from each store, against an oracle computed from the script alone.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LEDGER } from '../../src/backends/remote-write/ledger.js';
import { deployctl, gatewaySample } from '../helpers/cli.js';
import { TestRepo } from '../helpers/git.js';
import { eventually } from '../helpers/prometheus.js';
import { type RunningServer, startPushgateway, tempDir } from '../helpers/pushgateway.js';
import { RECEIVERS, type RunningReceiver } from '../helpers/victoria-metrics.js';

const H = 3_600;
const NOW = Math.floor(Date.now() / 1000);
const ENV = 'prod';
const REASONS = ['failure', 'rollback', 'verification', 'incident'] as const;

interface Deploy {
  status: 'success' | 'failure';
  /** A commit of the linear history c1 ← c2 ← c3: deploying an ancestor of the running one is a rollback. */
  commit: 'c1' | 'c2' | 'c3';
  finishedAt: number;
}

const SCRIPT: Record<string, Deploy[]> = {
  'fc/failed-then-fix': [
    { status: 'success', commit: 'c1', finishedAt: NOW - 6 * H },
    { status: 'failure', commit: 'c2', finishedAt: NOW - 5 * H },
    { status: 'success', commit: 'c2', finishedAt: NOW - 4 * H },
  ],
  'fc/rollback': [
    { status: 'success', commit: 'c1', finishedAt: NOW - 6 * H },
    { status: 'success', commit: 'c2', finishedAt: NOW - 5 * H },
    { status: 'success', commit: 'c1', finishedAt: NOW - 3 * H },
  ],
  'fc/retry-then-fix': [
    { status: 'success', commit: 'c1', finishedAt: NOW - 8 * H },
    { status: 'failure', commit: 'c2', finishedAt: NOW - 7 * H },
    { status: 'failure', commit: 'c2', finishedAt: NOW - 6 * H },
    { status: 'success', commit: 'c3', finishedAt: NOW - 4 * H },
  ],
  // The failed deploy's record is sent last, after its fix (a kept record flushed late).
  'fc/late-failure': [
    { status: 'success', commit: 'c1', finishedAt: NOW - 6 * H },
    { status: 'success', commit: 'c2', finishedAt: NOW - 4 * H },
    { status: 'failure', commit: 'c2', finishedAt: NOW - 5 * H },
  ],
  'fc/steady': [
    { status: 'success', commit: 'c1', finishedAt: NOW - 6 * H },
    { status: 'success', commit: 'c2', finishedAt: NOW - 5 * H },
  ],
};

interface Figures {
  failed: Record<(typeof REASONS)[number], number>;
  /** Recovery times, ascending. */
  recoveries: number[];
  rework: number;
}

/**
 * The oracle, from the definitions: a `failure` is a failed change known at its finish, recovered
 * by the next success; a success replaced by a rollback (a success of an older commit) is one,
 * recovered by the rollback; a deployment is rework when it is a rollback or finishes while
 * another failed change is known and not recovered.
 */
function oracle(script: Deploy[]): Figures {
  const list = [...script].sort((a, b) => a.finishedAt - b.finishedAt);
  const failed = { failure: 0, rollback: 0, verification: 0, incident: 0 };
  const changes: { at: number; knownAt: number; recoveredAt?: number }[] = [];
  const rollbacks = new Set<number>();
  let running: Deploy | undefined;
  for (const d of list) {
    if (d.status === 'failure') {
      failed.failure += 1;
      changes.push({ at: d.finishedAt, knownAt: d.finishedAt });
      continue;
    }
    if (running && d.commit < running.commit) {
      rollbacks.add(d.finishedAt);
      failed.rollback += 1;
      changes.push({ at: running.finishedAt, knownAt: running.finishedAt, recoveredAt: d.finishedAt });
    }
    for (const c of changes) if (c.recoveredAt === undefined && c.knownAt <= d.finishedAt) c.recoveredAt = d.finishedAt;
    running = d;
  }
  const rework = list.filter(
    (d) =>
      rollbacks.has(d.finishedAt) ||
      changes.some(
        (c) =>
          c.at !== d.finishedAt &&
          c.knownAt <= d.finishedAt &&
          (c.recoveredAt === undefined || c.recoveredAt >= d.finishedAt),
      ),
  ).length;
  return {
    failed,
    recoveries: changes
      .filter((c) => c.recoveredAt !== undefined)
      .map((c) => c.recoveredAt! - c.knownAt)
      .sort((a, b) => a - b),
    rework,
  };
}

const workdir = tempDir();
afterAll(() => workdir.remove());

let repo: { path: string; shas: Record<string, string> } | undefined;
function gitHistory() {
  if (!repo) {
    const r = new TestRepo(join(workdir.path, 'repo'));
    const shas: Record<string, string> = {};
    for (const [i, name] of ['c1', 'c2', 'c3'].entries()) shas[name] = r.commit(name, NOW - 20 * H + i * H);
    repo = { path: r.path, shas };
  }
  return repo;
}

async function recordScript(env: Record<string, string>): Promise<void> {
  const git = gitHistory();
  for (const [service, list] of Object.entries(SCRIPT)) {
    for (const d of list) {
      const result = await deployctl(
        [
          'record',
          ...['-s', service, '-e', ENV, '--status', d.status, '--commit', git.shas[d.commit]!],
          ...['--version', d.commit, '--finished-at', String(d.finishedAt), '--duration', '30', '--timeout', '10'],
        ],
        { env, cwd: git.path },
      );
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stderr).not.toMatch(/kept|warn/i);
    }
  }
}

it('the oracle counts what the definitions say for the script (a check of the oracle)', () => {
  expect(oracle(SCRIPT['fc/failed-then-fix']!)).toEqual({
    failed: { failure: 1, rollback: 0, verification: 0, incident: 0 },
    recoveries: [H],
    rework: 1,
  });
  expect(oracle(SCRIPT['fc/rollback']!)).toEqual({
    failed: { failure: 0, rollback: 1, verification: 0, incident: 0 },
    recoveries: [2 * H],
    rework: 1,
  });
  expect(oracle(SCRIPT['fc/retry-then-fix']!)).toEqual({
    failed: { failure: 2, rollback: 0, verification: 0, incident: 0 },
    recoveries: [2 * H, 3 * H],
    rework: 2,
  });
  expect(oracle(SCRIPT['fc/late-failure']!)).toEqual({
    failed: { failure: 1, rollback: 0, verification: 0, incident: 0 },
    recoveries: [H],
    rework: 1,
  });
  expect(oracle(SCRIPT['fc/steady']!)).toEqual({
    failed: { failure: 0, rollback: 0, verification: 0, incident: 0 },
    recoveries: [],
    rework: 0,
  });
});

describe('on a Pushgateway', () => {
  let gateway: RunningServer;
  beforeAll(async () => {
    gateway = await startPushgateway();
    await recordScript({ DEPLOYCTL_PUSHGATEWAY_URL: gateway.url, DEPLOYCTL_STATE_DIR: join(workdir.path, 'pg') });
  }, 120_000);
  afterAll(async () => {
    await gateway?.stop();
  });

  it.each(Object.keys(SCRIPT))(
    '%s: failed changes by reason, recovery time and rework as the oracle says',
    async (service) => {
      const expected = oracle(SCRIPT[service]!);
      const sample = (name: string, labels: Record<string, string> = {}) =>
        gatewaySample(gateway.url, name, { service, environment: ENV, ...labels });
      const failed: Record<string, number | undefined> = {};
      for (const reason of REASONS) failed[reason] = await sample('deployctl_failed_changes_total', { reason });
      expect(failed).toEqual(expected.failed);
      expect(await sample('deployctl_failed_deployment_recovery_seconds_count')).toBe(expected.recoveries.length);
      expect(await sample('deployctl_failed_deployment_recovery_seconds_sum')).toBe(
        expected.recoveries.reduce((a, b) => a + b, 0),
      );
      expect(await sample('deployctl_rework_deployments_total')).toBe(expected.rework);
      for (const result of ['pass', 'fail', 'inconclusive'])
        expect(await sample('deployctl_verifications_total', { result })).toBe(0);
      expect(await sample('deployctl_open_incidents')).toBe(0);
    },
  );
});

describe.each(Object.keys(RECEIVERS) as (keyof typeof RECEIVERS)[])('on remote-write to %s', (name) => {
  let receiver: RunningReceiver;
  beforeAll(async () => {
    receiver = await RECEIVERS[name](join(workdir.path, name));
    await recordScript({
      DEPLOYCTL_REMOTE_WRITE_URL: receiver.writeUrl,
      DEPLOYCTL_PROMETHEUS_URL: receiver.url,
      DEPLOYCTL_STATE_DIR: join(workdir.path, `${name}-state`),
    });
  }, 120_000);
  afterAll(async () => {
    await receiver?.stop();
  });

  it.each(Object.keys(SCRIPT))(
    '%s: failed changes by reason, recovery times and rework as the oracle says',
    async (service) => {
      const expected = oracle(SCRIPT[service]!);
      const sel = `{service=${JSON.stringify(service)}, environment="${ENV}"}`;
      const read = async (): Promise<Figures> => {
        const failed = { failure: 0, rollback: 0, verification: 0, incident: 0 };
        for (const s of await receiver.query(`sum by (reason) (count_over_time(${LEDGER.failedChange}${sel}[1d]))`))
          failed[s.metric.reason as keyof typeof failed] = Number(s.value[1]);
        const recoveries = (await receiver.query(`${LEDGER.failedRecovery}${sel}[1d]`, NOW + 60)) as unknown as {
          values: [number, string][];
        }[];
        const rework = await receiver.query(`sum(count_over_time(${LEDGER.rework}${sel}[1d]))`);
        return {
          failed,
          recoveries: recoveries.flatMap((s) => s.values.map(([, v]) => Number(v))).sort((a, b) => a - b),
          rework: rework.length === 1 ? Number(rework[0]!.value[1]) : 0,
        };
      };
      const got = await eventually(read, (v) => JSON.stringify(v) === JSON.stringify(expected), 20_000);
      expect(got).toEqual(expected);
    },
  );
});
