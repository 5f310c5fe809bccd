import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cliEnv, deployctl, gatewayEnv, hasGroup, scrape } from '../helpers/cli.js';
import { select, value } from '../helpers/exposition.js';
import { TestRepo } from '../helpers/git.js';
import { eventually, type RunningPrometheus, startPrometheus } from '../helpers/prometheus.js';
import { type ProxyAction, startProxy } from '../helpers/proxy.js';
import { type RunningServer, startPushgateway, tempDir } from '../helpers/pushgateway.js';
import { until } from '../helpers/wait.js';

const root = new URL('../../', import.meta.url).pathname;
const workdir = tempDir();
let gateway: RunningServer;
let prometheus: RunningPrometheus;
let env: Record<string, string>;
/**
 * Servers of later tests, started with the file's own: Prometheus scrapes a target only some
 * seconds after it starts, and these seconds pass while the tests before run.
 */
let withoutHonorLabels: Promise<RunningPrometheus>;
let restartStack: Promise<{ gateway: RunningServer; scraper: RunningPrometheus }>;

const T0 = 1_767_225_600; // 2026-01-01T00:00:00Z: commit and finish times of the script are fixed
const H = 3_600;
const SERVICE = 'numbers/api';
const ENV = 'prod';
const target = ['-s', SERVICE, '-e', ENV];

/** The commits of the script: name, commit hour, parents. Built as a real git history. */
const COMMITS: [string, number, string[]][] = [
  ['c1', 0, []],
  ['c2', 2, ['c1']],
  ['c3', 3, ['c2']],
  ['f1', 5, ['c3']], // a feature branch
  ['c4', 7, ['c3']],
  ['m1', 9, ['c4', 'f1']], // the merge of f1
  ['c5', 11, ['m1']],
  ['c6', 12, ['c5']],
  ['c7', 16, ['c6']],
];

type Status = 'success' | 'failure' | 'cancelled';
/** The deployments of the script: commit, status, finish hour, duration in seconds. */
const DEPLOYS: [string, Status, number, number][] = [
  ['c1', 'success', 1, 60], // first deployment
  ['c3', 'success', 4, 70],
  ['f1', 'success', 6, 80], // a branch deployed before its merge
  ['c4', 'success', 8, 90], // main without the branch
  ['m1', 'success', 10, 100], // the merge
  ['c6', 'failure', 13, 110],
  ['c6', 'success', 14, 120], // the same commit fails, then succeeds
  ['m1', 'success', 15, 130], // rollback
  ['c7', 'success', 17, 140], // roll-forward
  ['c7', 'success', 18, 150], // redeploy
  ['c7', 'cancelled', 18.5, 30],
  ['c6', 'success', 19, 160], // rollback
];

/** What the script must produce, from the definitions in SPEC.md alone. */
function oracle() {
  const parents = new Map(COMMITS.map(([name, , p]) => [name, p]));
  const hour = new Map(COMMITS.map(([name, h]) => [name, h]));
  const ancestors = (name: string): Set<string> => {
    const seen = new Set<string>();
    const stack = [name];
    while (stack.length) {
      const n = stack.pop()!;
      if (!seen.has(n)) {
        seen.add(n);
        stack.push(...parents.get(n)!);
      }
    }
    return seen;
  };
  const counts: Record<Status, number> = { success: 0, failure: 0, cancelled: 0 };
  const leadTimes: number[] = [];
  const restores: number[] = [];
  let rollbacks = 0;
  let running: string | undefined;
  const deployed = new Set<string>();
  let failingSince: number | undefined;
  // The SPEC's failed changes (failed deployments, and the deployment each rollback replaced), each
  // with when it was known and its recovery; rework: made while one is unrecovered, or a rollback.
  const failed: { known: number; recovered?: number }[] = [];
  let runningSince: number | undefined;
  let rework = 0;
  for (const [commit, status, finishHour] of DEPLOYS) {
    counts[status] += 1;
    const finishedAt = T0 + finishHour * H;
    const unrecovered = failed.some((f) => f.known < finishedAt && f.recovered === undefined);
    const rollback =
      status === 'success' && running !== undefined && commit !== running && ancestors(running).has(commit);
    if (status !== 'cancelled' && (unrecovered || rollback)) rework += 1;
    if (status === 'success')
      for (const f of failed) if (f.known < finishedAt && f.recovered === undefined) f.recovered = finishedAt;
    if (rollback) failed.push({ known: runningSince!, recovered: finishedAt });
    if (status === 'failure') failed.push({ known: finishedAt });
    if (status === 'success') runningSince = finishedAt;
    if (status === 'failure') failingSince ??= finishedAt;
    if (status !== 'success') continue;
    if (failingSince !== undefined) restores.push(finishedAt - failingSince);
    failingSince = undefined;
    const isRollback = running !== undefined && commit !== running && ancestors(running).has(commit);
    if (isRollback) rollbacks += 1;
    const brought = running === undefined ? [commit] : [...ancestors(commit)].filter((c) => !deployed.has(c));
    for (const c of brought) leadTimes.push(finishedAt - (T0 + hour.get(c)! * H));
    for (const c of ancestors(commit)) deployed.add(c);
    running = commit;
  }
  const finished = counts.success + counts.failure;
  const sum = (list: number[]) => list.reduce((a, b) => a + b, 0);
  return {
    counts,
    rollbacks,
    leadTimes,
    restores,
    leadTimeMean: sum(leadTimes) / leadTimes.length,
    restoreMean: sum(restores) / restores.length,
    changeFailureRate: (counts.failure + rollbacks) / finished,
    failedChanges: failed.length,
    recoveryMean: sum(failed.map((f) => f.recovered! - f.known)) / failed.length,
    reworkRate: rework / finished,
    deploymentFailureRate: counts.failure / finished,
    durationCount: DEPLOYS.length,
  };
}

async function scriptedHistory(): Promise<void> {
  const repo = new TestRepo(join(workdir.path, 'repo'));
  const sha = new Map<string, string>();
  for (const [name, commitHour, parentNames] of COMMITS) {
    const time = T0 + commitHour * H;
    if (parentNames.length === 0) sha.set(name, repo.commit(name, time));
    else {
      repo.git('checkout', '-q', '--detach', sha.get(parentNames[0]!)!);
      if (parentNames.length > 1)
        repo.git('merge', '-q', '--no-ff', '--no-commit', ...parentNames.slice(1).map((p) => sha.get(p)!));
      sha.set(name, repo.commit(name, time));
    }
  }
  for (const [commit, status, finishHour, duration] of DEPLOYS) {
    const args = [
      'record',
      ...target,
      '--status',
      status,
      '--commit',
      sha.get(commit)!,
      '--version',
      commit,
      '--duration',
      String(duration),
      '--finished-at',
      String(T0 + finishHour * H),
    ];
    const result = await deployctl(args, { env, cwd: repo.path });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).not.toMatch(/shallow|history ends/);
  }
  const step = await deployctl(['step', 'build', ...target, '--', 'true'], { env, cwd: repo.path });
  expect(step.exitCode, step.stderr).toBe(0);
}

beforeAll(async () => {
  gateway = await startPushgateway();
  env = gatewayEnv(gateway.url, join(workdir.path, 'state'));
  const plainDir = join(workdir.path, 'prometheus-without-honor-labels');
  mkdirSync(plainDir);
  withoutHonorLabels = startPrometheus(plainDir, gateway.url, [], { honorLabels: false });
  const restartDir = join(workdir.path, 'restart');
  mkdirSync(restartDir);
  restartStack = startPushgateway().then(async (lost) => ({
    gateway: lost,
    scraper: await startPrometheus(restartDir, lost.url),
  }));
  // A failed start fails the test that awaits it, not the whole file now.
  withoutHonorLabels.catch(() => undefined);
  restartStack.catch(() => undefined);
  prometheus = await startPrometheus(workdir.path, gateway.url, [
    join(root, 'examples/prometheus/deployctl-rules.yml'),
  ]);
  await scriptedHistory();
  const expected = oracle();
  await eventually(
    () => prometheus.query(`deployctl:rollbacks:increase1d{service="${SERVICE}"}`),
    (r) => r[0]?.value[1] === String(expected.rollbacks),
    30_000,
  );
  await eventually(
    () => prometheus.query(`deployctl:lead_time_seconds:mean_1d{service="${SERVICE}"}`),
    (r) => r[0]?.value[1] === String(expected.leadTimeMean),
    30_000,
  );
}, 120_000);

afterAll(async () => {
  await prometheus?.stop();
  await gateway?.stop();
  await (await withoutHonorLabels.catch(() => undefined))?.stop();
  const restart = await restartStack.catch(() => undefined);
  await restart?.scraper.stop();
  await restart?.gateway.stop();
  workdir.remove();
});

describe('a scripted history with merges, a branch deployed first, rollbacks and a roll-forward', () => {
  const expected = oracle();
  const group = { service: SERVICE, environment: ENV };

  it('has an oracle that reads the script as the definitions say', () => {
    // A guard against an oracle that drifted: the values worked out by hand from the script.
    expect(expected.rollbacks).toBe(2);
    expect([...expected.leadTimes].sort((a, b) => a - b)).toEqual([1, 1, 1, 1, 1, 1, 2, 2, 3].map((h) => h * H));
    expect(expected.restores).toEqual([H]);
    // c6 failed at 13 (recovered at 14), c6 at 14 and c7 at 18 were rolled back an hour later;
    // rework: c6 at 14 (after the failure), and the two rollbacks, of 11 deployments.
    expect(expected.failedChanges).toBe(3);
    expect(expected.recoveryMean).toBe(H);
    expect(expected.reworkRate).toBe(3 / 11);
  });

  it('puts exactly those numbers on the gateway', async () => {
    const samples = await scrape(gateway.url);
    for (const status of ['success', 'failure', 'cancelled'] as const) {
      expect(value(samples, 'deployctl_deployments_total', { ...group, status }), status).toBe(expected.counts[status]);
    }
    expect(value(samples, 'deployctl_rollbacks_total', group)).toBe(expected.rollbacks);
    expect(value(samples, 'deployctl_lead_time_seconds_count', group)).toBe(expected.leadTimes.length);
    expect(value(samples, 'deployctl_lead_time_seconds_sum', group)).toBe(
      expected.leadTimes.reduce((a, b) => a + b, 0),
    );
    for (const bucket of select(samples, 'deployctl_lead_time_seconds_bucket', group)) {
      const le = bucket.labels.le === '+Inf' ? Infinity : Number(bucket.labels.le);
      expect(bucket.value, `le=${bucket.labels.le}`).toBe(expected.leadTimes.filter((t) => t <= le).length);
    }
    expect(value(samples, 'deployctl_time_to_restore_seconds_count', group)).toBe(expected.restores.length);
    expect(value(samples, 'deployctl_time_to_restore_seconds_sum', group)).toBe(expected.restores[0]);
    const durations = select(samples, 'deployctl_deployment_duration_seconds_count', group).reduce(
      (a, s) => a + s.value,
      0,
    );
    expect(durations).toBe(expected.durationCount);
    expect(value(samples, 'deployctl_failing_since_timestamp_seconds', group)).toBe(0);
    expect(value(samples, 'deployctl_last_deployment_duration_seconds', group)).toBe(160);
  });

  it('gives deployctl dora --json the same numbers', async () => {
    const result = await deployctl(['dora', '--prometheus', prometheus.url, '--window', '1d', '--json', ...target], {
      env,
      cwd: workdir.path,
    });
    expect(result.exitCode, result.stderr).toBe(0);
    const [row] = (JSON.parse(result.stdout) as { rows: Record<string, any>[] }).rows;
    expect(row!.deployments).toEqual(expected.counts);
    expect(row!.rollbacks).toBe(expected.rollbacks);
    expect(row!.deploymentFrequencyPerDay.value).toBe(expected.counts.success);
    expect(row!.leadTimeSeconds.value).toBe(expected.leadTimeMean);
    expect(row!.changeFailureRate.value).toBe(expected.changeFailureRate);
    expect(row!.deploymentFailureRate).toBe(expected.deploymentFailureRate);
    expect(row!.timeToRestoreSeconds.value).toBe(expected.restoreMean);
  });

  it('gives the recording rules the same numbers', async () => {
    const one = async (expr: string) => {
      const result = await prometheus.query(expr);
      expect(result, expr).toHaveLength(1);
      return Number(result[0]!.value[1]);
    };
    const sel = `{service="${SERVICE}"}`;
    expect(await one(`deployctl:rollbacks:increase1d${sel}`)).toBe(expected.rollbacks);
    expect(await one(`deployctl:lead_time_seconds:mean_7d${sel}`)).toBe(expected.leadTimeMean);
    expect(await one(`deployctl:change_failure_rate:ratio_30d${sel}`)).toBe(expected.changeFailureRate);
    expect(await one(`deployctl:deployment_failure_rate:ratio_1d${sel}`)).toBe(expected.deploymentFailureRate);
    expect(await one(`deployctl:time_to_restore_seconds:mean_1d${sel}`)).toBe(expected.restoreMean);
    expect(await one(`deployctl:deployment_frequency:per_day_1d${sel}`)).toBe(expected.counts.success);
    expect(await one(`deployctl:deployments:increase1d{service="${SERVICE}",status="cancelled"}`)).toBe(
      expected.counts.cancelled,
    );
  });

  describe.each(['deployments.json', 'dora.json'])('every panel of %s', (file) => {
    const dashboard = JSON.parse(readFileSync(join(root, 'grafana-dashboards', file), 'utf8'));
    const targets: [string, string][] = dashboard.panels.flatMap((p: { title: string; targets?: { expr: string }[] }) =>
      (p.targets ?? []).map((t) => [p.title, t.expr]),
    );
    const interpolate = (expr: string) =>
      expr
        .replaceAll('$__range_s', '86400')
        .replaceAll('$__range', '1d')
        .replaceAll('$__interval', '1m')
        .replaceAll('$service', SERVICE)
        .replaceAll('$environment', ENV);
    const exact: Record<string, number> = {
      'deployments.json/Deployments': expected.counts.success + expected.counts.failure + expected.counts.cancelled,
      'deployments.json/Successful': expected.counts.success,
      'deployments.json/Failed': expected.counts.failure,
      'deployments.json/Cancelled': expected.counts.cancelled,
      'deployments.json/Rollbacks': expected.rollbacks,
      'deployments.json/In progress': 0,
      'deployments.json/Last deployment duration': 160,
      'dora.json/Deployment frequency': expected.counts.success,
      'dora.json/Lead time for changes': expected.leadTimeMean,
      'dora.json/Change failure rate': expected.changeFailureRate,
      'dora.json/Time to restore': expected.restoreMean,
      'dora.json/Rollbacks': expected.rollbacks,
      'dora.json/Deployment failure ratio': expected.deploymentFailureRate,
      'dora.json/Lead time for changes (rolling 7d)': expected.leadTimeMean,
      'dora.json/Change failure rate (rolling 7d)': expected.changeFailureRate,
      'dora.json/Time to restore (rolling 7d)': expected.restoreMean,
      'dora.json/Deployment frequency (rolling 7d)': expected.counts.success / 7,
      'dora.json/Failed deployment recovery time': expected.recoveryMean,
      'dora.json/Failed deployment recovery time (rolling 7d)': expected.recoveryMean,
      'dora.json/Deployment rework rate': expected.reworkRate,
      'dora.json/Deployment rework rate (rolling 7d)': expected.reworkRate,
    };

    it.each(targets)(
      '"%s" answers for this service, with the oracle\'s number where it has one',
      async (title, expr) => {
        const result = await prometheus.query(interpolate(expr));
        expect(result.length, interpolate(expr)).toBeGreaterThan(0);
        const want = exact[`${file}/${title}`];
        if (want !== undefined) {
          expect(result, title).toHaveLength(1);
          expect(Number(result[0]!.value[1]), title).toBe(want);
        }
      },
    );

    it('has an oracle value for every panel that shows one number', () => {
      const numbers = dashboard.panels.filter(
        (p: { type: string; targets?: unknown[]; title: string }) =>
          p.type === 'stat' && !p.title.endsWith(': band') && p.title !== 'Since last success',
      );
      for (const panel of numbers) expect(exact[`${file}/${panel.title}`], panel.title).toBeDefined();
    });
  });

  it('shows the rollbacks in deployctl status', async () => {
    const status = await deployctl(['status', '--json', ...target], { env, cwd: workdir.path });
    const [row] = JSON.parse(status.stdout) as Record<string, any>[];
    expect(row).toMatchObject({
      version: 'c6',
      status: 'success',
      rollbacks: expected.rollbacks,
      deployments: expected.counts,
      inProgress: false,
      startedAt: null,
    });
  });
});

/** Runs the built binary with this machine's clock moved by `offset` (faketime), as deployctl() does otherwise. */
async function deployctlAt(offset: string, args: string[], extraEnv: Record<string, string>) {
  const result = await execa('faketime', ['-f', offset, process.execPath, BIN, ...args], {
    env: cliEnv({ HOME: workdir.path, ...extraEnv }),
    extendEnv: false,
    reject: false,
    timeout: 20_000,
    cwd: workdir.path,
  });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

describe('exactly once, whatever the clocks', () => {
  const count = async (service: string) =>
    value(await scrape(gateway.url), 'deployctl_deployments_total', {
      service,
      environment: 'prod',
      status: 'success',
    });

  it('counts each record once when a runner a day ahead recorded first', async () => {
    const skewEnv = { ...env, DEPLOYCTL_STATE_DIR: join(workdir.path, 'state-skew') };
    for (let i = 0; i < 25; i++) {
      const result = await deployctlAt(
        '+1d',
        ['record', '-s', 'skew/api', '-e', 'prod', '--status', 'success'],
        skewEnv,
      );
      expect(result.exitCode, result.stderr).toBe(0);
    }
    expect(await count('skew/api')).toBe(25);
    const onTime = await deployctl(['record', '-s', 'skew/api', '-e', 'prod', '--status', 'success'], {
      env: skewEnv,
      cwd: workdir.path,
    });
    expect(onTime.exitCode, onTime.stderr).toBe(0);
    expect(onTime.stderr).not.toContain('kept');
    expect(await count('skew/api')).toBe(26);
    for (let i = 0; i < 3; i++)
      await deployctl(['record', '-s', 'skew/api', '-e', 'prod', '--status', 'success'], {
        env: skewEnv,
        cwd: workdir.path,
      });
    expect(await count('skew/api')).toBe(29);
  }, 90_000);

  it('counts a record stored but left in the outbox once, after 30 other records landed', async () => {
    let mode: 'lose-the-answer' | 'forward' = 'lose-the-answer';
    let posts = 0;
    const proxy = await startProxy(gateway.url, (request): ProxyAction => {
      if (mode === 'forward') return 'forward';
      if (request.method === 'POST') return posts++ === 0 ? 'drop-response' : { status: 503, body: 'unavailable' };
      return posts === 0 ? 'forward' : { status: 503, body: 'unavailable' };
    });
    try {
      const keptEnv = {
        ...env,
        DEPLOYCTL_PUSHGATEWAY_URL: proxy.url,
        DEPLOYCTL_STATE_DIR: join(workdir.path, 'state-kept'),
      };
      const kept = await deployctl(
        ['record', '-s', 'kept/api', '-e', 'prod', '--status', 'success', '--timeout', '2'],
        { env: keptEnv, cwd: workdir.path },
      );
      expect(kept.exitCode, kept.stderr).toBe(0);
      expect(kept.stderr).toMatch(/kept in/);
      expect(await count('kept/api')).toBe(1); // the gateway stored it; the recorder never heard so
      const otherEnv = { ...env, DEPLOYCTL_STATE_DIR: join(workdir.path, 'state-other') };
      for (let i = 0; i < 30; i++) {
        const result = await deployctl(['record', '-s', 'kept/api', '-e', 'prod', '--status', 'success'], {
          env: otherEnv,
          cwd: workdir.path,
        });
        expect(result.exitCode, result.stderr).toBe(0);
      }
      expect(await count('kept/api')).toBe(31);
      mode = 'forward';
      const flush = await deployctl(['flush'], { env: keptEnv, cwd: workdir.path });
      expect(flush.exitCode, flush.stderr + flush.stdout).toBe(0);
      expect(await count('kept/api')).toBe(31);
    } finally {
      await proxy.close();
    }
  }, 90_000);
});

describe('start and finish have an identity', () => {
  const group = { service: 'once/api', environment: 'prod' };
  const args = ['-s', group.service, '-e', group.environment];

  it('counts one finish; a second finish says nothing is in progress and is not counted', async () => {
    const startEnv = { ...env, DEPLOYCTL_STATE_DIR: join(workdir.path, 'state-once') };
    expect((await deployctl(['start', ...args, '--version', '1'], { env: startEnv, cwd: workdir.path })).exitCode).toBe(
      0,
    );
    const first = await deployctl(['finish', ...args, '--status', 'success'], { env: startEnv, cwd: workdir.path });
    expect(first.exitCode, first.stderr).toBe(0);
    const second = await deployctl(['finish', ...args, '--status', 'success'], { env: startEnv, cwd: workdir.path });
    expect(second.exitCode).toBe(0);
    expect(second.stderr).toContain('nothing is in progress for this group');
    const elsewhere = await deployctl(['finish', ...args, '--status', 'success'], {
      env: { ...env, DEPLOYCTL_STATE_DIR: join(workdir.path, 'state-elsewhere') },
      cwd: workdir.path,
    });
    expect(elsewhere.stderr).toContain('nothing is in progress for this group');
    expect(value(await scrape(gateway.url), 'deployctl_deployments_total', { ...group, status: 'success' })).toBe(1);
  });

  it('counts a replaced start as cancelled, and status shows the one left in progress with its start time', async () => {
    const startEnv = { ...env, DEPLOYCTL_STATE_DIR: join(workdir.path, 'state-twice') };
    const startedAt = Math.floor(Date.now() / 1000) - 600;
    expect(
      (
        await deployctl(['start', ...args, '--started-at', String(startedAt - 60)], {
          env: startEnv,
          cwd: workdir.path,
        })
      ).exitCode,
    ).toBe(0);
    const again = await deployctl(['start', ...args, '--started-at', String(startedAt)], {
      env: startEnv,
      cwd: workdir.path,
    });
    expect(again.exitCode).toBe(0);
    expect(again.stderr).toMatch(/a deployment started at .* was still in progress: it is counted as cancelled/);
    expect(value(await scrape(gateway.url), 'deployctl_deployments_total', { ...group, status: 'cancelled' })).toBe(1);
    const status = await deployctl(['status', '--json', ...args], { env, cwd: workdir.path });
    expect(JSON.parse(status.stdout)[0]).toMatchObject({ inProgress: true, startedAt });
    const table = await deployctl(['status', ...args], { env, cwd: workdir.path });
    expect(table.stdout).toContain(
      `(deploying since ${new Date(startedAt * 1000).toISOString().replace('.000Z', 'Z')}, 10m`,
    );
  });
});

describe('impossible times are refused, and nothing is pushed', () => {
  const now = () => Math.floor(Date.now() / 1000);
  const cases: [string, () => string[], RegExp, boolean][] = [
    ['started-at-zero', () => ['--started-at', '0'], /--started-at "0" is before 2000/, true],
    [
      'milliseconds',
      () => ['--finished-at', String(now() * 1000)],
      /looks like milliseconds since 1970, not seconds/,
      true,
    ],
    ['tomorrow', () => ['--finished-at', String(now() + 86_400)], /in the future/, true],
    ['words', () => ['--finished-at', 'tomorrow'], /is not a timestamp/, true],
    ['huge-duration', () => ['--duration', '1e308'], /--duration must be a number of seconds/, false],
    ['long-duration', () => ['--duration', '9999999'], /a deployment that took 115.7 days is not plausible/, false],
  ];
  it.each(cases)('%s', async (name, flags, message, listsFormats) => {
    const service = `times/${name}`;
    const result = await deployctl(['record', '-s', service, '-e', 'prod', '--status', 'success', ...flags()], {
      env,
      cwd: workdir.path,
    });
    expect(result.exitCode, result.stderr).toBe(2);
    expect(result.stderr).toMatch(message);
    if (listsFormats) expect(result.stderr).toContain('accepted: Unix seconds');
    expect(await hasGroup(gateway.url, service)).toBe(false);
  });
});

describe('dora with a Prometheus that scrapes the gateway without honor_labels', () => {
  it('says so and how to fix it, instead of "no deployments"', async () => {
    const plain = await withoutHonorLabels;
    try {
      const ready = await eventually(
        () => plain.query('count(deployctl_deployments_total{exported_job="deployctl"})'),
        (r) => r.length === 1,
        30_000,
      );
      expect(ready).toHaveLength(1);
      const result = await deployctl(['dora', '--prometheus', plain.url, '--window', '1d'], { env, cwd: workdir.path });
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(
        'with the job label renamed to exported_job (scrape job "pushgateway"): it scrapes the Pushgateway without honor_labels',
      );
      expect(result.stderr).toContain('add honor_labels: true to the scrape job "pushgateway"');
    } finally {
      await plain.stop();
    }
  }, 60_000);
});

describe('an answer that is not the gateway API never resets a total', () => {
  it('keeps the record when a sign-in page answers 200, and counts it once the gateway answers', async () => {
    const service = 'html/api';
    const stateEnv = { ...env, DEPLOYCTL_STATE_DIR: join(workdir.path, 'state-html') };
    for (let i = 0; i < 5; i++) {
      const result = await deployctl(['record', '-s', service, '-e', 'prod', '--status', 'success'], {
        env: stateEnv,
        cwd: workdir.path,
      });
      expect(result.exitCode, result.stderr).toBe(0);
    }
    let signIn = true;
    const proxy = await startProxy(
      gateway.url,
      (): ProxyAction =>
        signIn ? { status: 200, body: '<!doctype html><html><body><form>Sign in</form></body></html>' } : 'forward',
    );
    try {
      const viaProxy = { ...stateEnv, DEPLOYCTL_PUSHGATEWAY_URL: proxy.url };
      const result = await deployctl(['record', '-s', service, '-e', 'prod', '--status', 'success'], {
        env: viaProxy,
        cwd: workdir.path,
      });
      expect(result.exitCode).toBe(0);
      expect(result.stderr).toContain('with something that is not JSON');
      expect(result.stderr).toMatch(/kept in/);
      expect(proxy.requests.filter((r) => r.method === 'POST')).toHaveLength(0);
      const count = async () =>
        value(await scrape(gateway.url), 'deployctl_deployments_total', {
          service,
          environment: 'prod',
          status: 'success',
        });
      expect(await count()).toBe(5);
      signIn = false;
      const flush = await deployctl(['flush'], { env: viaProxy, cwd: workdir.path });
      expect(flush.exitCode, flush.stderr).toBe(0);
      expect(await count()).toBe(6);
    } finally {
      await proxy.close();
    }
  });
});

describe('the smaller numbers', () => {
  it('clears the last duration when the last deployment has none, and shows failing-since 0 for a group that never failed', async () => {
    const group = { service: 'small/api', environment: 'prod' };
    const args = ['record', '-s', group.service, '-e', group.environment, '--status', 'success'];
    expect((await deployctl([...args, '--duration', '42'], { env, cwd: workdir.path })).exitCode).toBe(0);
    expect(value(await scrape(gateway.url), 'deployctl_last_deployment_duration_seconds', group)).toBe(42);
    expect((await deployctl(args, { env, cwd: workdir.path })).exitCode).toBe(0);
    const samples = await scrape(gateway.url);
    expect(value(samples, 'deployctl_last_deployment_duration_seconds', group)).toBeNaN();
    expect(value(samples, 'deployctl_failing_since_timestamp_seconds', group)).toBe(0);
    const status = await deployctl(['status', '--json', '-s', group.service], { env, cwd: workdir.path });
    expect(JSON.parse(status.stdout)[0]).toMatchObject({
      durationSeconds: null,
      deployments: { success: 2, failure: 0, cancelled: 0 },
    });
  });
});

describe('a gateway restarted empty, with Prometheus having scraped it', () => {
  it('continues every total from Prometheus, so that Prometheus never sees a reset; doctor reports the loss first', async () => {
    const dir = join(workdir.path, 'restart');
    const { gateway: started, scraper } = await restartStack;
    let lost = started;
    const port = lost.port;
    try {
      const group = { service: 'restart/api', environment: 'prod' };
      const repo = new TestRepo(join(dir, 'repo'));
      const restartEnv = {
        DEPLOYCTL_PUSHGATEWAY_URL: lost.url,
        DEPLOYCTL_STATE_DIR: join(dir, 'state'),
        DEPLOYCTL_PROMETHEUS_URL: scraper.url,
      };
      const args = ['record', '-s', group.service, '-e', group.environment];
      repo.commit('r1', T0);
      expect(
        (
          await deployctl([...args, '--status', 'success', '--duration', '10', '--finished-at', String(T0 + H)], {
            env: restartEnv,
            cwd: repo.path,
          })
        ).exitCode,
      ).toBe(0);
      repo.commit('r2', T0 + 2 * H);
      expect(
        (
          await deployctl([...args, '--status', 'failure', '--duration', '20', '--finished-at', String(T0 + 3 * H)], {
            env: restartEnv,
            cwd: repo.path,
          })
        ).exitCode,
      ).toBe(0);
      expect(
        (
          await deployctl([...args, '--status', 'success', '--duration', '30', '--finished-at', String(T0 + 4 * H)], {
            env: restartEnv,
            cwd: repo.path,
          })
        ).exitCode,
      ).toBe(0);
      // Prometheus has scraped the three records.
      const seen = await eventually(
        () => scraper.query(`deployctl_records_applied_total{service="${group.service}"}`),
        (r) => r[0]?.value[1] === '3',
        30_000,
      );
      expect(seen[0]?.value[1]).toBe('3');

      await lost.stop();
      lost = await startPushgateway([], { port });
      // A scrape of the empty gateway: one that started after it did, and reached it.
      const restartedAt = Date.now() / 1_000;
      const scrapedEmpty = async () =>
        (await scraper.query('up{job="pushgateway"}'))[0]?.value[1] === '1' &&
        Number((await scraper.query('timestamp(up{job="pushgateway"})'))[0]?.value[1]) > restartedAt;
      expect(await until(scrapedEmpty, 30_000, 100)).toBe(true);
      const doctor = await deployctl(['doctor', '--prometheus', scraper.url], { env: restartEnv, cwd: dir });
      expect(doctor.stdout).toContain('1 group(s) hold fewer deployments on the gateway than Prometheus saw');
      expect(doctor.stdout).toContain('restart/api in prod');

      repo.commit('r3', T0 + 5 * H);
      const after = await deployctl(
        [...args, '--status', 'success', '--duration', '40', '--finished-at', String(T0 + 6 * H)],
        { env: restartEnv, cwd: repo.path },
      );
      expect(after.exitCode, after.stderr).toBe(0);
      expect(after.stderr).toContain(
        'the gateway held lower totals for restart/api in prod than Prometheus last scraped',
      );
      const samples = await scrape(lost.url);
      expect(value(samples, 'deployctl_deployments_total', { ...group, status: 'success' })).toBe(3);
      expect(value(samples, 'deployctl_deployments_total', { ...group, status: 'failure' })).toBe(1);
      expect(
        select(samples, 'deployctl_deployment_duration_seconds_count', group).reduce((a, s) => a + s.value, 0),
      ).toBe(4);
      expect(select(samples, 'deployctl_deployment_duration_seconds_sum', group).reduce((a, s) => a + s.value, 0)).toBe(
        100,
      );
      // Lead time: r1 alone, then r2, then r3: the deployed commits were remembered through Prometheus.
      expect(value(samples, 'deployctl_lead_time_seconds_count', group)).toBe(3);
      expect(value(samples, 'deployctl_lead_time_seconds_sum', group)).toBe(H + 2 * H + H);
      expect(value(samples, 'deployctl_time_to_restore_seconds_count', group)).toBe(1);
      expect(value(samples, 'deployctl_records_applied_total', group)).toBe(4);

      const resets = await eventually(
        () => scraper.query(`deployctl_deployments_total{service="${group.service}",status="success"}`),
        (r) => r[0]?.value[1] === '3',
        30_000,
      );
      expect(resets[0]?.value[1]).toBe('3');
      const counted = await scraper.query(`resets(deployctl_deployments_total{service="${group.service}"}[10m])`);
      expect(counted.every((s) => s.value[1] === '0')).toBe(true);
      const healthy = await deployctl(['doctor', '--prometheus', scraper.url], { env: restartEnv, cwd: dir });
      expect(healthy.stdout).toContain(
        "every group's deployment totals on the gateway are at least what Prometheus saw",
      );
    } finally {
      await scraper.stop();
      await lost.stop();
    }
  }, 90_000);
});
