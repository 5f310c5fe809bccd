/**
 * Zero is a number (SPEC.md, Definitions): one scripted history with the zero cases — a group
 * with only failures, a group with deployments and no failed change, a group with only a
 * cancelled deployment, and a group that failed and was restored — recorded on each backend, and
 * every number of it checked against an oracle computed from the script alone: `dora --json` and
 * its table, every recording rule, every query of both dashboards, and `status`. A count with
 * nothing of its kind is 0; a rate over deployments that include none of its kind is 0; only a
 * mean with nothing to average (and a ratio over no deployment) is empty.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { LEDGER } from '../../src/backends/remote-write/ledger.js';
import { deployctl } from '../helpers/cli.js';
import { TestRepo } from '../helpers/git.js';
import { eventually, startPrometheus } from '../helpers/prometheus.js';
import { startPushgateway, tempDir } from '../helpers/pushgateway.js';
import { startPrometheusReceiver, startVictoriaMetrics } from '../helpers/victoria-metrics.js';

const root = new URL('../../', import.meta.url).pathname;
const M = 60;
const H = 3_600;
const DAY = 86_400;
const NOW = Math.floor(Date.now() / 1000);
const ENV = 'prod';

type Status = 'success' | 'failure' | 'cancelled';
interface Deploy {
  status: Status;
  commit: string;
  finishedAt: number;
  duration: number;
  /** Seconds from the commit to this (successful) deployment, given with --commit-time. */
  leadTime?: number;
}

/**
 * The commits of the one group with a git history (zero/rolled): name → commit time and parents.
 * Every other commit has no history: it is its own only ancestor, and no deployment of it is a rollback.
 */
const GIT: Record<string, { time: number; parents: string[] }> = {
  a1: { time: NOW - 10 * H, parents: [] },
  a2: { time: NOW - 9 * H, parents: ['a1'] },
};

/**
 * The script: per group, its deployments oldest first, finished a few hours before the test (in
 * every window from a day up).
 */
const SCRIPT: Record<string, Deploy[]> = {
  'zero/failing': [
    { status: 'failure', commit: 'f1', finishedAt: NOW - 6 * H, duration: 30 },
    { status: 'failure', commit: 'f2', finishedAt: NOW - 5 * H, duration: 30 },
  ],
  'zero/steady': [
    { status: 'success', commit: 's1', finishedAt: NOW - 6 * H, duration: 60, leadTime: 10 * M },
    { status: 'success', commit: 's2', finishedAt: NOW - 3 * H, duration: 60, leadTime: 15 * M },
  ],
  'zero/cancelled': [{ status: 'cancelled', commit: 'x1', finishedAt: NOW - 4 * H, duration: 5 }],
  'zero/restored': [
    { status: 'failure', commit: 'r1', finishedAt: NOW - 5 * H, duration: 30 },
    { status: 'success', commit: 'r2', finishedAt: NOW - 5 * H + 20 * M, duration: 60, leadTime: 30 * M },
    { status: 'cancelled', commit: 'r3', finishedAt: NOW - 2 * H, duration: 5 },
  ],
  // a2 is rolled back to its parent a1: a failed change that is no failed deployment.
  'zero/rolled': [
    { status: 'success', commit: 'a1', finishedAt: NOW - 8 * H, duration: 60 },
    { status: 'success', commit: 'a2', finishedAt: NOW - 7 * H, duration: 60 },
    { status: 'success', commit: 'a1', finishedAt: NOW - 6 * H, duration: 60 },
  ],
};
const GROUPS = Object.keys(SCRIPT);
const TOTAL = Object.values(SCRIPT).flat().length;

type BandName = 'elite' | 'high' | 'medium' | 'low';
/** DORA's bands, as the docs' table gives them. */
const BAND = {
  frequency: (v: number): BandName => (v >= 1 ? 'elite' : v >= 1 / 7 ? 'high' : v >= 1 / 30 ? 'medium' : 'low'),
  leadTime: (v: number): BandName => (v <= DAY ? 'elite' : v <= 7 * DAY ? 'high' : v <= 30 * DAY ? 'medium' : 'low'),
  changeFailureRate: (v: number): BandName => (v <= 0.15 ? 'elite' : v <= 0.3 ? 'high' : v <= 0.45 ? 'medium' : 'low'),
  timeToRestore: (v: number): BandName => (v <= H ? 'elite' : v <= DAY ? 'high' : v <= 7 * DAY ? 'medium' : 'low'),
};
const BAND_NUMBER: Record<BandName, number> = { elite: 4, high: 3, medium: 2, low: 1 };

/** A commit and every commit it reaches (itself alone without a git history). */
function ancestors(commit: string): Set<string> {
  const seen = new Set<string>();
  const stack = [commit];
  while (stack.length) {
    const c = stack.pop()!;
    if (!seen.has(c)) {
      seen.add(c);
      stack.push(...(GIT[c]?.parents ?? []));
    }
  }
  return seen;
}

/** What the definitions make of one group's script over a window of `days` (every deployment is in it). */
function oracle(group: string, days: number) {
  const list = SCRIPT[group]!;
  const counts: Record<Status, number> = { success: 0, failure: 0, cancelled: 0 };
  const leadTimes: number[] = [];
  const restores: number[] = [];
  const rolledBack: Deploy[] = [];
  let leadSamples = 0;
  let failingSince: number | undefined;
  let running: string | undefined;
  let runningDeploy: Deploy | undefined;
  const deployed = new Set<string>();
  // The SPEC's failed changes: failed deployments and the deployments rollbacks replaced, each with
  // when it was known, its recovery (when recovered), and the rework deployments.
  const failedChanges: { reason: 'failure' | 'rollback'; known: number; recovered?: number }[] = [];
  let rework = 0;
  for (const d of list) {
    counts[d.status] += 1;
    let isRework =
      d.status !== 'cancelled' && failedChanges.some((f) => f.known < d.finishedAt && f.recovered === undefined);
    if (isRework && d.status === 'failure') rework += 1;
    if (d.status === 'failure') failedChanges.push({ reason: 'failure', known: d.finishedAt });
    if (d.status === 'success')
      for (const f of failedChanges)
        if (f.recovered === undefined && f.known < d.finishedAt) f.recovered = d.finishedAt;
    if (d.status === 'failure') failingSince ??= d.finishedAt;
    if (d.status !== 'success') continue;
    if (failingSince !== undefined) restores.push(d.finishedAt - failingSince);
    failingSince = undefined;
    // A rollback: a proper ancestor of the commit the group runs.
    if (running !== undefined && d.commit !== running && ancestors(running).has(d.commit)) {
      rolledBack.push(d);
      // The deployment it replaced is a failed change, recovered by the rollback itself; a rollback is rework.
      failedChanges.push({ reason: 'rollback', known: runningDeploy!.finishedAt, recovered: d.finishedAt });
      isRework = true;
    }
    // Lead time: the commit alone with --commit-time or on the first deployment, else every commit never deployed before.
    const brought =
      d.leadTime !== undefined
        ? [d.leadTime]
        : (running === undefined ? [d.commit] : [...ancestors(d.commit)].filter((c) => !deployed.has(c))).map(
            (c) => d.finishedAt - GIT[c]!.time,
          );
    leadTimes.push(...brought);
    if (brought.length) leadSamples += 1;
    for (const c of ancestors(d.commit)) deployed.add(c);
    if (isRework) rework += 1;
    running = d.commit;
    runningDeploy = d;
  }
  const rollbacks = rolledBack.length;
  const recoveries = failedChanges.filter((f) => f.recovered !== undefined).map((f) => f.recovered! - f.known);
  const byReason = { failure: 0, rollback: 0, verification: 0, incident: 0 };
  for (const f of failedChanges) byReason[f.reason] += 1;
  const finished = counts.success + counts.failure;
  const mean = (values: number[]) => (values.length ? values.reduce((a, b) => a + b, 0) / values.length : null);
  const durations: Partial<Record<Status, number>> = {};
  for (const d of list) {
    // The script gives one duration per status and group, so every quantile of them is that duration.
    expect(durations[d.status] ?? d.duration).toBe(d.duration);
    durations[d.status] = d.duration;
  }
  return {
    counts,
    rollbacks,
    rolledBack,
    leadSamples,
    restoreSamples: restores.length,
    frequency: counts.success / days,
    changeFailureRate: finished > 0 ? failedChanges.length / finished : null,
    failedChanges: failedChanges.length,
    failedChangesByReason: byReason,
    reworkDeployments: rework,
    recovery: mean(recoveries),
    reworkRate: finished > 0 ? rework / finished : null,
    deploymentFailureRate: finished > 0 ? counts.failure / finished : null,
    leadTime: mean(leadTimes),
    timeToRestore: mean(restores),
    durations,
    last: list.at(-1)!,
    lastSuccess: list.filter((d) => d.status === 'success').at(-1),
  };
}

/** The oracle itself, against the values worked out by hand: the zero cases are what they should be. */
describe('the oracle of the zero cases', () => {
  it('reads the script as the definitions say', () => {
    expect(oracle('zero/failing', 1)).toMatchObject({
      counts: { success: 0, failure: 2, cancelled: 0 },
      frequency: 0,
      changeFailureRate: 1,
      leadTime: null,
      timeToRestore: null,
    });
    expect(oracle('zero/steady', 1)).toMatchObject({ frequency: 2, changeFailureRate: 0, leadTime: 750 });
    expect(oracle('zero/cancelled', 1)).toMatchObject({ frequency: 0, changeFailureRate: null, leadTime: null });
    expect(oracle('zero/restored', 7)).toMatchObject({
      frequency: 1 / 7,
      changeFailureRate: 0.5,
      timeToRestore: 1_200,
    });
    expect(oracle('zero/failing', 1)).toMatchObject({ failedChanges: 2, reworkDeployments: 1, recovery: null });
    expect(oracle('zero/restored', 1)).toMatchObject({ failedChanges: 1, reworkDeployments: 1, recovery: 1_200 });
    expect(oracle('zero/steady', 1)).toMatchObject({ failedChanges: 0, reworkDeployments: 0, reworkRate: 0 });
    expect(oracle('zero/rolled', 1)).toMatchObject({
      failedChanges: 1,
      failedChangesByReason: { failure: 0, rollback: 1, verification: 0, incident: 0 },
      reworkDeployments: 1,
      recovery: H,
    });
    expect(oracle('zero/rolled', 1)).toMatchObject({
      rollbacks: 1,
      changeFailureRate: 1 / 3,
      deploymentFailureRate: 0,
      leadTime: 2 * H,
      leadSamples: 2,
    });
  });
});

type Vector = { metric: Record<string, string>; value: [number, string] }[];

interface Stack {
  /** Settings of deployctl for this backend. */
  env: Record<string, string>;
  /** Flags that reading commands need beside env. */
  readFlags: string[];
  query(expr: string): Promise<Vector>;
  /** The dashboards' folder below grafana-dashboards/. */
  dashboards: string;
  /** Recording rules: the file, the recorded names, and whether the store evaluates them itself. */
  rules: { file: string; prefix: string; count: string; evaluated: boolean };
  /** Waits until the store shows the whole history (and the rules have seen it). */
  ready(): Promise<void>;
  stop(): Promise<void>;
}

const workdir = tempDir();
afterAll(() => workdir.remove());

async function pushgatewayStack(): Promise<Stack> {
  const dir = join(workdir.path, 'pushgateway');
  const gateway = await startPushgateway();
  const rules = join(root, 'examples/prometheus/deployctl-rules.yml');
  mkdirSync(dir, { recursive: true });
  const prometheus = await startPrometheus(dir, gateway.url, [rules]);
  const query = (expr: string) => prometheus.query(expr);
  return {
    env: { DEPLOYCTL_PUSHGATEWAY_URL: gateway.url, DEPLOYCTL_STATE_DIR: join(dir, 'state') },
    readFlags: ['--prometheus', prometheus.url],
    query,
    dashboards: '',
    rules: { file: rules, prefix: 'deployctl:', count: 'increase', evaluated: true },
    async ready() {
      await settled(query, `sum(deployctl_deployments_total{service=~"zero/.*"})`, TOTAL);
      await rulesEvaluated(query, 'deployctl:time_to_restore_seconds:mean_30d');
    },
    async stop() {
      await prometheus.stop();
      await gateway.stop();
    },
  };
}

/** The ledger's samples of the whole history: finished, version and duration per deployment, lead time and restore per success. */
const LEDGER_SAMPLES = [
  'finished_timestamp_seconds',
  'version_finished_timestamp_seconds',
  'finished_duration_seconds',
  'lead_time_seconds_sum',
  'lead_time_seconds_count',
  'time_to_restore_seconds',
]
  .map((name) => `(sum(count_over_time(deployctl_deployment_${name}{service=~"zero/.*"}[1d])) or vector(0))`)
  .join(' + ');
const ledgerSampleCount = GROUPS.map((g) => oracle(g, 1)).reduce(
  (n, o) => n + 3 * (o.counts.success + o.counts.failure + o.counts.cancelled) + 2 * o.leadSamples + o.restoreSamples,
  0,
);

async function remoteWriteStack(kind: 'prometheus' | 'victoria-metrics'): Promise<Stack> {
  const dir = join(workdir.path, kind);
  const rules = join(root, 'examples/prometheus/remote-write/deployctl-rules.yml');
  const receiver =
    kind === 'prometheus'
      ? await startPrometheusReceiver(dir, { ruleFiles: [rules] })
      : await startVictoriaMetrics(dir);
  const query = (expr: string) => receiver.query(expr);
  return {
    env: { DEPLOYCTL_REMOTE_WRITE_URL: receiver.writeUrl, DEPLOYCTL_STATE_DIR: join(dir, 'state') },
    readFlags: [],
    query,
    dashboards: 'remote-write',
    // VictoriaMetrics evaluates no rules itself (that is vmalert's job): the test evaluates each rule's expression.
    rules: { file: rules, prefix: 'deployctl_rw:', count: 'count', evaluated: kind === 'prometheus' },
    async ready() {
      await settled(query, LEDGER_SAMPLES, ledgerSampleCount);
      await rollbackSamples(query);
      if (kind === 'prometheus') await rulesEvaluated(query, 'deployctl_rw:time_to_restore_seconds:mean_30d');
    },
    stop: () => receiver.stop(),
  };
}

/** The ledger's rollback samples (LEDGER.rollback), one per rollback, as deployctl wrote them: as many as the oracle counts. */
async function rollbackSamples(query: (expr: string) => Promise<Vector>): Promise<void> {
  const total = GROUPS.reduce((n, g) => n + oracle(g, 1).rollbacks, 0);
  await settled(query, `sum(count_over_time(${LEDGER.rollback}{service=~"zero/.*"}[1d])) or vector(0)`, total);
}

/** Waits (bounded) until `expr` is the single number `want`. */
async function settled(query: (expr: string) => Promise<Vector>, expr: string, want: number): Promise<void> {
  const result = await eventually(
    () => query(expr),
    (r) => r.length === 1 && Number(r[0]!.value[1]) === want,
    40_000,
  );
  expect(
    result.map((s) => Number(s.value[1])),
    expr,
  ).toEqual([want]);
}

/** Waits (bounded) until the last recording rule was evaluated after now: every rule of that round saw the whole history. */
async function rulesEvaluated(query: (expr: string) => Promise<Vector>, lastRule: string): Promise<void> {
  const after = Date.now() / 1000;
  const result = await eventually(
    () => query(`timestamp(${lastRule})`),
    (r) => r.length > 0 && r.every((s) => Number(s.value[1]) > after + 0.5),
    30_000,
  );
  expect(result.length, lastRule).toBeGreaterThan(0);
  expect(Math.min(...result.map((s) => Number(s.value[1])))).toBeGreaterThan(after + 0.5);
}

/** The git history of GIT, made once: its path, and commit name → SHA. */
let git: { path: string; shas: Map<string, string> } | undefined;
function gitHistory(): { path: string; shas: Map<string, string> } {
  if (!git) {
    const repo = new TestRepo(join(workdir.path, 'repo'));
    const shas = new Map<string, string>();
    for (const [name, { time, parents }] of Object.entries(GIT)) {
      if (parents.length) repo.git('checkout', '-q', '--detach', shas.get(parents[0]!)!);
      shas.set(name, repo.commit(name, time));
    }
    git = { path: repo.path, shas };
  }
  return git;
}

/** Records the script, group after group, as one machine would. */
async function recordScript(stack: Stack): Promise<void> {
  const git = gitHistory();
  for (const [group, list] of Object.entries(SCRIPT)) {
    for (const d of list) {
      const sha = git.shas.get(d.commit);
      const args = [
        'record',
        '-s',
        group,
        '-e',
        ENV,
        '--status',
        d.status,
        '--commit',
        sha ?? d.commit,
        '--version',
        d.commit,
        '--finished-at',
        String(d.finishedAt),
        '--duration',
        String(d.duration),
        '--timeout',
        '10',
        ...(d.leadTime === undefined ? [] : ['--commit-time', String(d.finishedAt - d.leadTime)]),
      ];
      const result = await deployctl(args, { env: stack.env, cwd: sha ? git.path : workdir.path });
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stderr).not.toMatch(/kept in/);
    }
  }
}

/** What one query must answer. */
type Expect =
  | { absent: true }
  | { value: number }
  /** One sample per value of `label`, exactly these. */
  | { by: string; values: Record<string, number> }
  /** Exactly these samples, told apart by the labels given. */
  | { rows: { labels: Record<string, string>; value: number }[] }
  /** One sample, within `within` of `near` (a time since). */
  | { near: () => number; within: number }
  /** An answer whose every value is a finite number (a quantile interpolated in histogram buckets). */
  | { finite: true };

const value = (v: number | null): Expect => (v === null ? { absent: true } : { value: v });
const bandOf = (v: number | null, band: (v: number) => BandName): Expect =>
  v === null ? { absent: true } : { value: BAND_NUMBER[band(v)] };

/** Compares an answer with what it must be; returns the problem, or '' and how many numbers it checked. */
function compare(result: Vector, want: Expect): { problem: string; numbers: number } {
  const values = result.map((s) => Number(s.value[1]));
  const shown = JSON.stringify(result.map((s) => [s.metric, s.value[1]]));
  if ('absent' in want) return { problem: result.length === 0 ? '' : `want nothing, got ${shown}`, numbers: 1 };
  if ('value' in want)
    return {
      problem: values.length === 1 && values[0] === want.value ? '' : `want ${want.value}, got ${shown}`,
      numbers: 1,
    };
  if ('by' in want) {
    const got = Object.fromEntries(result.map((s) => [s.metric[want.by], Number(s.value[1])]));
    const same =
      result.length === Object.keys(want.values).length &&
      JSON.stringify(sorted(got)) === JSON.stringify(sorted(want.values));
    return {
      problem: same ? '' : `want ${JSON.stringify(want.values)} by ${want.by}, got ${shown}`,
      numbers: Object.keys(want.values).length,
    };
  }
  if ('rows' in want) {
    const key = (labels: Record<string, string>, v: number, names: string[]) =>
      JSON.stringify([...names.map((n) => labels[n]), v]);
    const names = Object.keys(want.rows[0]?.labels ?? {});
    const got = result.map((s) => key(s.metric, Number(s.value[1]), names)).sort();
    const expected = want.rows.map((r) => key(r.labels, r.value, names)).sort();
    return {
      problem: JSON.stringify(got) === JSON.stringify(expected) ? '' : `want ${JSON.stringify(expected)}, got ${shown}`,
      numbers: Math.max(1, want.rows.length),
    };
  }
  if ('near' in want) {
    const near = want.near();
    return {
      problem:
        values.length === 1 && Math.abs(values[0]! - near) <= want.within
          ? ''
          : `want ${near} ± ${want.within}, got ${shown}`,
      numbers: 1,
    };
  }
  return {
    problem: values.length > 0 && values.every(Number.isFinite) ? '' : `want finite numbers, got ${shown}`,
    numbers: values.length,
  };
}

const sorted = (o: Record<string, number>) =>
  Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

/** Every query of a dashboard file, as `title/refId`. */
function dashboardTargets(folder: string, file: string): { id: string; expr: string }[] {
  const dashboard = JSON.parse(readFileSync(join(root, 'grafana-dashboards', folder, file), 'utf8'));
  return (dashboard.panels as { title: string; targets?: { refId: string; expr: string }[] }[]).flatMap((p) =>
    (p.targets ?? []).map((t) => ({ id: `${p.title}/${t.refId}`, expr: t.expr })),
  );
}

/** Grafana's interpolation for one group over a day, each interval a day too (every deployment in one). */
function interpolate(expr: string, group: string): string {
  return expr
    .replaceAll('$__range_s', String(DAY))
    .replaceAll('$__range', '1d')
    .replaceAll('$__interval', '1d')
    .replaceAll('$service', group)
    .replaceAll('$environment', ENV);
}

/** Each version and status deployed, with its latest finish time in milliseconds (one version series each on remote-write). */
function latestByVersion(list: Deploy[]): { labels: Record<string, string>; value: number }[] {
  const latest = new Map<string, { labels: Record<string, string>; value: number }>();
  for (const d of list) {
    const row = { labels: { version: d.commit, status: d.status }, value: d.finishedAt * 1000 };
    const key = JSON.stringify(row.labels);
    if ((latest.get(key)?.value ?? -1) < row.value) latest.set(key, row);
  }
  return [...latest.values()];
}

/** The oracle's answer to every dashboard query of one group, on a backend. */
function dashboardOracle(backend: 'pushgateway' | 'remote-write', group: string): Record<string, Expect> {
  const day = oracle(group, 1);
  const week = oracle(group, 7);
  const { counts } = day;
  const byStatus = { by: 'status', values: counts };
  const last = day.last;
  const lastSuccess = day.lastSuccess;
  const list = SCRIPT[group]!;
  return {
    'deployments.json/Deployments/A': { value: counts.success + counts.failure + counts.cancelled },
    'deployments.json/Successful/A': { value: counts.success },
    'deployments.json/Failed/A': { value: counts.failure },
    'deployments.json/Cancelled/A': { value: counts.cancelled },
    'deployments.json/Rollbacks/A': { value: day.rollbacks },
    'deployments.json/In progress/A': { value: 0 },
    'deployments.json/Since last success/A': lastSuccess
      ? { near: () => Date.now() / 1000 - lastSuccess.finishedAt, within: 10 }
      : { absent: true },
    'deployments.json/Recent deployments/A':
      backend === 'pushgateway'
        ? { rows: [{ labels: { version: last.commit, status: last.status }, value: last.finishedAt * 1000 }] }
        : { rows: latestByVersion(list) },
    'deployments.json/Current version per environment/A': lastSuccess
      ? {
          rows: [
            {
              labels: { version: lastSuccess.commit },
              value: backend === 'pushgateway' ? 1 : lastSuccess.finishedAt,
            },
          ],
        }
      : { absent: true },
    'deployments.json/Deployments by status/A': byStatus,
    'deployments.json/Deployments by status/B': { value: day.rollbacks },
    ...Object.fromEntries(
      ['A', 'B', 'C'].map((ref) => [
        `deployments.json/Deployment duration (rolling 7d)/${ref}`,
        backend === 'pushgateway' ? ({ finite: true } as Expect) : ({ by: 'status', values: day.durations } as Expect),
      ]),
    ),
    'deployments.json/Mean step duration/A': { absent: true },
    ...(backend === 'pushgateway'
      ? { 'deployments.json/Last deployment duration/A': { value: last.duration } }
      : { 'deployments.json/Deployment duration/A': { value: Math.max(...list.map((d) => d.duration)) } }),

    'dora.json/Deployment frequency/A': value(day.frequency),
    'dora.json/Deployment frequency: band/A': bandOf(day.frequency, BAND.frequency),
    'dora.json/Deployment frequency (rolling 7d)/A': value(week.frequency),
    'dora.json/Lead time for changes/A': value(day.leadTime),
    'dora.json/Lead time for changes: band/A': bandOf(day.leadTime, BAND.leadTime),
    'dora.json/Lead time for changes (rolling 7d)/A': value(week.leadTime),
    'dora.json/Change failure rate/A': value(day.changeFailureRate),
    'dora.json/Change failure rate: band/A': bandOf(day.changeFailureRate, BAND.changeFailureRate),
    'dora.json/Change failure rate (rolling 7d)/A': value(week.changeFailureRate),
    'dora.json/Time to restore/A': value(day.timeToRestore),
    'dora.json/Time to restore: band/A': bandOf(day.timeToRestore, BAND.timeToRestore),
    'dora.json/Time to restore (rolling 7d)/A': value(week.timeToRestore),
    'dora.json/Deployments in range by status/A': byStatus,
    'dora.json/Rollbacks/A': { value: day.rollbacks },
    'dora.json/Deployment failure ratio/A': value(day.deploymentFailureRate),
    'dora.json/Failed deployment recovery time/A': value(day.recovery),
    'dora.json/Failed deployment recovery time: band/A': bandOf(day.recovery, BAND.timeToRestore),
    'dora.json/Failed deployment recovery time (rolling 7d)/A': value(week.recovery),
    'dora.json/Deployment rework rate/A': value(day.reworkRate),
    'dora.json/Deployment rework rate (rolling 7d)/A': value(week.reworkRate),
    'dora.json/Failed changes by reason/A': { by: 'reason', values: day.failedChangesByReason },
  };
}

/** The oracle's value of every recording rule for one group. */
function rulesOracle(rules: Stack['rules'], group: string): Record<string, Expect> {
  const out: Record<string, Expect> = {};
  for (const [window, days] of [
    ['1d', 1],
    ['7d', 7],
    ['30d', 30],
  ] as const) {
    const o = oracle(group, days);
    const p = rules.prefix;
    out[`${p}deployments:${rules.count}${window}`] = { by: 'status', values: o.counts };
    out[`${p}deployment_frequency:per_day_${window}`] = value(o.frequency);
    out[`${p}rollbacks:${rules.count}${window}`] = value(o.rollbacks);
    out[`${p}change_failure_rate:ratio_${window}`] = value(o.changeFailureRate);
    out[`${p}deployment_failure_rate:ratio_${window}`] = value(o.deploymentFailureRate);
    out[`${p}lead_time_seconds:mean_${window}`] = value(o.leadTime);
    out[`${p}time_to_restore_seconds:mean_${window}`] = value(o.timeToRestore);
    // A group with deployments in the window has failed changes and rework, 0 or more.
    const any = o.counts.success + o.counts.failure + o.counts.cancelled > 0;
    out[`${p}failed_changes:${rules.count}${window}`] = value(any ? o.failedChanges : null);
    out[`${p}failed_changes_by_reason:${rules.count}${window}`] = any
      ? { by: 'reason', values: o.failedChangesByReason }
      : { absent: true };
    out[`${p}rework_deployments:${rules.count}${window}`] = value(any ? o.reworkDeployments : null);
    out[`${p}deployment_rework_rate:ratio_${window}`] = value(o.reworkRate);
    out[`${p}failed_deployment_recovery_seconds:mean_${window}`] = value(o.recovery);
  }
  return out;
}

/** A value a row of `dora --json` has for a key: the number and DORA's band, or nulls when there is nothing to measure. */
const key = (v: number | null, band: (v: number) => BandName) => ({ value: v, band: v === null ? null : band(v) });

const STACKS = {
  pushgateway: pushgatewayStack,
  'remote-write to prometheus': () => remoteWriteStack('prometheus'),
  'remote-write to victoria-metrics': () => remoteWriteStack('victoria-metrics'),
} as const;

describe.each(Object.keys(STACKS) as (keyof typeof STACKS)[])('zero is a number on %s', (name) => {
  const backend = name === 'pushgateway' ? 'pushgateway' : 'remote-write';
  let stack: Stack;
  /** How many numbers of the history each check compared with the oracle. */
  const checked: Record<string, number> = {};

  beforeAll(async () => {
    stack = await STACKS[name]();
    await recordScript(stack);
    await stack.ready();
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    console.log(
      `zero is a number on ${name}: ${JSON.stringify(checked)}, ${Object.values(checked).reduce((a, b) => a + b, 0)} numbers in all`,
    );
  });

  it.each(['1d', '7d'])(
    'dora --json over %s: every count, rate and band, with 0 where the answer is 0',
    async (window) => {
      const days = window === '1d' ? 1 : 7;
      const result = await deployctl(['dora', ...stack.readFlags, '--window', window, '--json', '--timeout', '10'], {
        env: stack.env,
        cwd: workdir.path,
      });
      expect(result.exitCode, result.stderr).toBe(0);
      const { rows } = JSON.parse(result.stdout) as { rows: Record<string, unknown>[] };
      const want = GROUPS.map((group) => {
        const o = oracle(group, days);
        return {
          job: 'deployctl',
          service: group,
          environment: ENV,
          deployments: o.counts,
          rollbacks: o.rollbacks,
          deploymentFrequencyPerDay: key(o.frequency, BAND.frequency),
          leadTimeSeconds: key(o.leadTime, BAND.leadTime),
          changeFailureRate: key(o.changeFailureRate, BAND.changeFailureRate),
          deploymentFailureRate: o.deploymentFailureRate,
          timeToRestoreSeconds: key(o.timeToRestore, BAND.timeToRestore),
          failedChanges: o.failedChanges,
          failedChangesByReason: o.failedChangesByReason,
          reworkDeployments: o.reworkDeployments,
          failedDeploymentRecoveryTimeSeconds: key(o.recovery, BAND.timeToRestore),
          deploymentReworkRate: { value: o.reworkRate, band: null },
        };
      });
      const byService = (list: Record<string, unknown>[]) =>
        [...list].sort((a, b) => String(a.service).localeCompare(String(b.service)));
      expect(byService(rows)).toEqual(byService(want));
      // 3 counts by status, rollbacks, 4 values with a band each and the plain failure ratio, per group.
      checked[`dora --json ${window}`] = GROUPS.length * 23;
    },
  );

  it('dora (the table) shows 0/day (low), 0% and 0 where the answer is 0, and "-" where there is nothing to measure', async () => {
    const result = await deployctl(['dora', ...stack.readFlags, '--window', '1d', '--timeout', '10'], {
      env: stack.env,
      cwd: workdir.path,
    });
    expect(result.exitCode, result.stderr).toBe(0);
    const row = (group: string) => result.stdout.split('\n').find((line) => line.startsWith(`${group} `)) ?? '';
    // SERVICE ENVIRONMENT DEPLOYMENTS FAILED-CHANGES FREQUENCY LEAD-TIME CHANGE-FAILURE-RATE RECOVERY-TIME REWORK-RATE
    expect(row('zero/failing')).toMatch(
      /^zero\/failing\s+prod\s+2\s+2 \(2 failure\)\s+0\/day \(low\)\s+-\s+100% \(low\)\s+-\s+50%\s*$/,
    );
    expect(row('zero/steady')).toMatch(
      /^zero\/steady\s+prod\s+2\s+0\s+2\/day \(elite\)\s+12m30s \(elite\)\s+0% \(elite\)\s+-\s+0%\s*$/,
    );
    expect(row('zero/cancelled')).toMatch(/^zero\/cancelled\s+prod\s+1\s+0\s+0\/day \(low\)\s+-\s+-\s+-\s+-\s*$/);
    expect(row('zero/restored')).toMatch(
      /^zero\/restored\s+prod\s+3\s+1 \(1 failure\)\s+1\/day \(elite\)\s+30m0s \(elite\)\s+50% \(low\)\s+20m0s \(elite\)\s+50%\s*$/,
    );
    expect(row('zero/rolled')).toMatch(
      /^zero\/rolled\s+prod\s+3\s+1 \(1 rollback\)\s+3\/day \(elite\)\s+2h0m \(elite\)\s+33\.3% \(medium\)\s+1h0m \(elite\)\s+33\.3%\s*$/,
    );
    checked['dora table'] = GROUPS.length * 7;
  });

  it('status shows each group with 0 for each status it has none of, and its rollbacks', async () => {
    const result = await deployctl(['status', '--json', ...stack.readFlags, '--timeout', '10'], {
      env: stack.env,
      cwd: workdir.path,
    });
    expect(result.exitCode, result.stderr).toBe(0);
    const groups = JSON.parse(result.stdout) as Record<string, unknown>[];
    for (const group of GROUPS) {
      const o = oracle(group, 1);
      expect(
        groups.find((g) => g.service === group),
        group,
      ).toMatchObject({
        deployments: o.counts,
        rollbacks: o.rollbacks,
        status: o.last.status,
        finishedAt: o.last.finishedAt,
        inProgress: false,
        startedAt: null,
      });
    }
    checked.status = GROUPS.length * 6;
  });

  it('has recording rules that give every number, with 0 where the answer is 0', async () => {
    const yaml = parse(readFileSync(stack.rules.file, 'utf8')) as {
      groups: { rules: { record?: string; expr: string }[] }[];
    };
    const recording = yaml.groups.flatMap((g) => g.rules).filter((r) => r.record);
    const problems: string[] = [];
    let numbers = 0;
    const names = new Set<string>();
    for (const rule of recording) {
      // Prometheus records each rule itself; VictoriaMetrics is asked the rule's expression.
      const answer = await stack.query(stack.rules.evaluated ? rule.record! : rule.expr);
      for (const group of GROUPS) {
        const want = rulesOracle(stack.rules, group)[rule.record!];
        if (!want) {
          problems.push(`${rule.record}: no oracle`);
          continue;
        }
        names.add(rule.record!);
        const mine = answer.filter((s) => s.metric.service === group && s.metric.environment === ENV);
        const { problem, numbers: n } = compare(mine, want);
        numbers += n;
        if (problem) problems.push(`${rule.record} for ${group}: ${problem}`);
      }
    }
    expect(problems).toEqual([]);
    expect(names.size).toBe(36);
    checked['recording rules'] = numbers;
  });

  it.each(['deployments.json', 'dora.json'])(
    'every query of %s gives the oracle its number for each group, 0 where the answer is 0',
    async (file) => {
      const problems: string[] = [];
      let numbers = 0;
      const targets = dashboardTargets(stack.dashboards, file);
      for (const group of GROUPS) {
        const expected = dashboardOracle(backend, group);
        for (const { id, expr } of targets) {
          const want = expected[`${file}/${id}`];
          if (!want) {
            problems.push(`${file}/${id}: no oracle`);
            continue;
          }
          const { problem, numbers: n } = compare(await stack.query(interpolate(expr, group)), want);
          numbers += n;
          if (problem) problems.push(`${id} for ${group}: ${problem}\n  ${interpolate(expr, group)}`);
        }
      }
      expect(problems).toEqual([]);
      checked[file] = numbers;
    },
    60_000,
  );
});
