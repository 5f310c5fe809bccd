import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ledgerDoraQueries, selector } from '../../src/backends/remote-write/promql.js';
import { BIN, deployctl, scrape } from '../helpers/cli.js';
import { value } from '../helpers/exposition.js';
import { type RunningServer, startPushgateway, tempDir } from '../helpers/pushgateway.js';
import { type RunningReceiver, startPrometheusReceiver } from '../helpers/victoria-metrics.js';

/**
 * A runner whose clock is a day off records among runners with correct clocks (this machine's).
 * The servers run here too, so the test's own clock is the servers' clock: "now" below.
 */
const DAY = 86_400;
const TOLERANCE = 300;
const workdir = tempDir();
let gateway: RunningServer;
let receiver: RunningReceiver;

const now = () => Date.now() / 1000;

/** Runs the built binary with its clock moved by `offset` (faketime: "+1d", "-1d"). */
async function deployctlAt(offset: string, args: string[], env: Record<string, string>) {
  const result = await execa('faketime', ['-f', offset, process.execPath, BIN, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: workdir.path, NO_COLOR: '1', ...env },
    extendEnv: false,
    reject: false,
    timeout: 30_000,
    cwd: workdir.path,
  });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** The offset in seconds that the clock warning names, signed as this machine's clock is off (ahead: +). */
function warnedOffset(stderr: string): number | undefined {
  const match = /this machine's clock is [\d.]+ \w+ \((\d+) s\) (ahead of|behind) the clock of/.exec(stderr);
  if (!match) return undefined;
  return Number(match[1]) * (match[2] === 'ahead of' ? 1 : -1);
}

/** The records still kept in a state directory's outbox. */
const kept = (stateDir: string) =>
  existsSync(join(stateDir, 'outbox'))
    ? readdirSync(join(stateDir, 'outbox')).filter((name) => name.endsWith('.json'))
    : [];

beforeAll(async () => {
  [gateway, receiver] = await Promise.all([
    startPushgateway(),
    // An out-of-order window of 10 minutes (Amazon Managed Prometheus allows no more): a sample
    // written a day ahead would make this store refuse every later record of every group.
    startPrometheusReceiver(join(workdir.path, 'receiver'), { outOfOrderWindow: '10m' }),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.all([gateway?.stop(), receiver?.stop()]);
  workdir.remove();
});

describe('a runner whose clock is a day off, on the Pushgateway', () => {
  const service = 'clocks/api';
  const args = ['-s', service, '-e', 'prod', '--timeout', '5'];
  const group = { service, environment: 'prod' };
  const env = (machine: string) => ({
    DEPLOYCTL_PUSHGATEWAY_URL: gateway.url,
    DEPLOYCTL_STATE_DIR: join(workdir.path, 'pushgateway', machine),
  });
  const gauge = async (name: string) => value(await scrape(gateway.url), name, group);
  let failedAt = 0;

  it("records a failure from a runner a day ahead at the gateway's now, and says how far off its clock is", async () => {
    const before = now();
    const result = await deployctlAt(
      '+1d',
      ['record', ...args, '--status', 'failure', '--version', 'v0', '--commit', 'c0', '--duration', '30', '--json'],
      env('ahead'),
    );
    const after = now();
    expect(result.exitCode, result.stderr).toBe(0);
    expect(Math.abs(warnedOffset(result.stderr)! - DAY), result.stderr).toBeLessThanOrEqual(2);
    expect(result.stderr).toMatch(/set this machine's clock right/);
    const recorded = JSON.parse(result.stdout) as { finishedAt: number; clockCorrection: number; recorded: boolean };
    expect(recorded.recorded).toBe(true);
    expect(Math.abs(recorded.clockCorrection + DAY)).toBeLessThanOrEqual(2);
    expect(recorded.finishedAt).toBeGreaterThanOrEqual(before - 2);
    expect(recorded.finishedAt).toBeLessThanOrEqual(after + 2);
    failedAt = recorded.finishedAt;
    // Every time on the gateway is the corrected one: none is in the future.
    for (const name of [
      'deployctl_last_deployment_timestamp_seconds',
      'deployctl_last_failure_timestamp_seconds',
      'deployctl_failing_since_timestamp_seconds',
    ]) {
      expect(await gauge(name), name).toBe(failedAt);
    }
    expect(failedAt).toBeLessThanOrEqual(now() + TOLERANCE);
    expect(await gauge('deployctl_deployment_duration_seconds_sum')).toBe(30);
    expect(kept(env('ahead').DEPLOYCTL_STATE_DIR)).toEqual([]);
  }, 60_000);

  it('marks a start and a finish from a runner a day behind at the gateway now, and times the restore from the failure', async () => {
    const machine = env('behind');
    const start = await deployctlAt('-1d', ['start', ...args, '--version', 'v1', '--commit', 'c1'], machine);
    expect(start.exitCode, start.stderr).toBe(0);
    expect(Math.abs(warnedOffset(start.stderr)! + DAY), start.stderr).toBeLessThanOrEqual(2);
    const startedAt = await gauge('deployctl_deployment_started_timestamp_seconds');
    expect(Math.abs(startedAt - now())).toBeLessThan(30);
    const finish = await deployctlAt('-1d', ['finish', ...args, '--status', 'success', '--json'], machine);
    expect(finish.exitCode, finish.stderr).toBe(0);
    const finished = JSON.parse(finish.stdout) as { finishedAt: number; timeToRestore: number };
    expect(Math.abs(finished.finishedAt - now())).toBeLessThan(30);
    // From the failure a day ahead to this success a day behind: seconds, not two days.
    expect(finished.timeToRestore).toBeGreaterThanOrEqual(0);
    expect(finished.timeToRestore).toBeLessThan(60);
    expect(await gauge('deployctl_time_to_restore_seconds_count')).toBe(1);
    expect(await gauge('deployctl_last_success_timestamp_seconds')).toBe(finished.finishedAt);
    expect(await gauge('deployctl_deployment_started_timestamp_seconds')).toBe(0);
  }, 60_000);

  it('keeps a given --finished-at as given, and records one ahead of the gateway at its now, with a warning', async () => {
    const machine = env('given');
    const givenArgs = ['-s', 'clocks/given', '-e', 'prod', '--timeout', '5', '--status', 'success', '--json'];
    const past = Math.floor(now()) - 3_600;
    const asGiven = await deployctlAt('+1d', ['record', ...givenArgs, '--finished-at', String(past)], machine);
    expect(asGiven.exitCode, asGiven.stderr).toBe(0);
    expect(JSON.parse(asGiven.stdout)).toMatchObject({ finishedAt: past, recorded: true });
    expect(JSON.parse(asGiven.stdout).clockCorrection).toBeUndefined();
    // Two hours ahead of the gateway, but not of this runner's clock: it passes the runner's own check.
    const ahead = Math.floor(now()) + 7_200;
    const before = now();
    const clamped = await deployctlAt('+1d', ['record', ...givenArgs, '--finished-at', String(ahead)], machine);
    expect(clamped.exitCode, clamped.stderr).toBe(0);
    expect(clamped.stderr).toMatch(/the finish time \S+ is 2 hours \(\d+ s\) ahead of the clock of the gateway at/);
    const { finishedAt } = JSON.parse(clamped.stdout) as { finishedAt: number };
    expect(finishedAt).toBeGreaterThanOrEqual(Math.floor(before) - 2);
    expect(finishedAt).toBeLessThanOrEqual(now() + 2);
    expect(
      value(await scrape(gateway.url), 'deployctl_last_deployment_timestamp_seconds', { service: 'clocks/given' }),
    ).toBe(finishedAt);
  }, 60_000);

  it('then counts 20 records from correct clocks, and status shows the latest of them', async () => {
    const machine = env('on-time');
    for (let i = 1; i <= 20; i++) {
      const result = await deployctl(['record', ...args, '--status', 'success', '--version', `v${i + 1}`], {
        env: machine,
      });
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stderr).not.toMatch(/clock|is kept in|still kept/);
    }
    const samples = await scrape(gateway.url);
    expect(value(samples, 'deployctl_deployments_total', { ...group, status: 'success' })).toBe(21);
    expect(value(samples, 'deployctl_deployments_total', { ...group, status: 'failure' })).toBe(1);
    expect(kept(machine.DEPLOYCTL_STATE_DIR)).toEqual([]);
    const status = await deployctl(['status', '-s', service, '-e', 'prod', '--json'], { env: machine });
    expect(status.exitCode, status.stderr).toBe(0);
    const [row] = JSON.parse(status.stdout) as { version: string; status: string; finishedAt: number }[];
    expect(row).toMatchObject({ version: 'v21', status: 'success', deployments: { success: 21, failure: 1 } });
    expect(row!.finishedAt).toBeGreaterThan(failedAt);
    expect(row!.finishedAt).toBeLessThanOrEqual(now() + TOLERANCE);
  }, 120_000);
});

describe("a runner whose clock is a day off, on Prometheus's remote-write receiver", () => {
  const service = 'clocks/rw';
  const g = { job: 'deployctl', service, environment: 'prod' };
  const sel = selector(g, '=');
  const args = (s = service) => ['-s', s, '-e', 'prod', '--timeout', '5'];
  const env = (machine: string) => ({
    DEPLOYCTL_REMOTE_WRITE_URL: receiver.writeUrl,
    DEPLOYCTL_PROMETHEUS_URL: receiver.url,
    DEPLOYCTL_STATE_DIR: join(workdir.path, 'remote-write', machine),
  });
  /** Every sample time (Unix seconds) of the group's series, up to two days ahead of now. */
  const sampleTimes = async (name: string) => {
    const future = Math.floor(now()) + 2 * DAY;
    const series = (await receiver.query(`${name}${sel}[3d]`, future)) as unknown as {
      values: [number, string][];
    }[];
    return series.flatMap((s) => s.values.map(([t]) => t));
  };
  const countsByStatus = async (s: string) => {
    const q = ledgerDoraQueries(selector({ ...g, service: s }, '='), '1d', '1');
    const vector = await receiver.query(q.deploymentsByStatus);
    return Object.fromEntries(vector.map((v) => [v.metric.status, Number(v.value[1])]));
  };

  it('writes the failure and a step of a runner a day ahead at the store now, and says how far off its clock is', async () => {
    const before = now();
    const result = await deployctlAt(
      '+1d',
      ['record', ...args(), '--status', 'failure', '--version', 'v0', '--commit', 'c0', '--json'],
      env('ahead'),
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(Math.abs(warnedOffset(result.stderr)! - DAY), result.stderr).toBeLessThanOrEqual(2);
    expect(result.stderr).toMatch(/ahead of the clock of the store at/);
    const recorded = JSON.parse(result.stdout) as { finishedAt: number; recorded: boolean };
    expect(recorded.recorded).toBe(true);
    // A step writes before any other answer came: a small request asks the store for its clock first.
    const step = await deployctlAt('+1d', ['step', 'build', ...args(), '--', 'true'], env('ahead'));
    expect(step.exitCode, step.stderr).toBe(0);
    expect(warnedOffset(step.stderr), step.stderr).toBeGreaterThan(DAY - 3);
    const after = now();
    const times = [
      ...(await sampleTimes('deployctl_deployment_finished_timestamp_seconds')),
      ...(await sampleTimes('deployctl_deployment_version_finished_timestamp_seconds')),
      ...(await sampleTimes('deployctl_step_finished_duration_seconds')),
    ];
    expect(times).toHaveLength(3);
    for (const t of times) {
      expect(t).toBeGreaterThanOrEqual(before - 2);
      expect(t).toBeLessThanOrEqual(after + 1);
    }
    expect(recorded.finishedAt).toBeLessThanOrEqual(after + 1);
    expect(kept(env('ahead').DEPLOYCTL_STATE_DIR)).toEqual([]);
  }, 60_000);

  it('writes a success from a runner a day behind at the store now, where the store takes it', async () => {
    const machine = env('behind');
    const before = now();
    const result = await deployctlAt('-1d', ['record', ...args(), '--status', 'success', '--version', 'v1'], machine);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(Math.abs(warnedOffset(result.stderr)! + DAY), result.stderr).toBeLessThanOrEqual(2);
    expect(result.stderr).not.toMatch(/is kept in|still kept|refused/);
    expect(kept(machine.DEPLOYCTL_STATE_DIR)).toEqual([]);
    // The failure of the runner a day ahead, and this success: both at the store's now.
    const times = await sampleTimes('deployctl_deployment_finished_timestamp_seconds');
    expect(times).toHaveLength(2);
    expect(Math.max(...times)).toBeGreaterThanOrEqual(before - 2);
    for (const t of times) expect(t).toBeLessThanOrEqual(now() + 1);
  }, 60_000);

  it('then takes 20 records from correct clocks, in this group and another, every one counted', async () => {
    const machine = env('on-time');
    for (let i = 1; i <= 20; i++) {
      const s = i % 2 ? service : 'clocks/rw-other';
      const result = await deployctl(['record', ...args(s), '--status', 'success', '--version', `v${i + 1}`], {
        env: machine,
      });
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stderr).not.toMatch(/clock|is kept in|still kept|refused/);
    }
    expect(kept(machine.DEPLOYCTL_STATE_DIR)).toEqual([]);
    expect(await countsByStatus(service)).toEqual({ success: 11, failure: 1, cancelled: 0 });
    expect(await countsByStatus('clocks/rw-other')).toEqual({ success: 10, failure: 0, cancelled: 0 });
    for (const t of await sampleTimes('deployctl_deployment_finished_timestamp_seconds'))
      expect(t).toBeLessThanOrEqual(now() + TOLERANCE);
  }, 120_000);

  it('counts the failure from the runner a day ahead in dora --json, and status shows the latest deployment', async () => {
    const machine = env('on-time');
    const dora = await deployctl(['dora', ...args(), '--window', '1d', '--json'], { env: machine });
    expect(dora.exitCode, dora.stderr).toBe(0);
    const [row] = (JSON.parse(dora.stdout) as { rows: Record<string, any>[] }).rows;
    expect(row).toMatchObject({ service, deployments: { success: 11, failure: 1 } });
    expect(row!.changeFailureRate.value).toBe(1 / 12);
    const status = await deployctl(['status', ...args(), '--json'], { env: machine });
    expect(status.exitCode, status.stderr).toBe(0);
    const [latest] = JSON.parse(status.stdout) as { version: string; status: string; finishedAt: number }[];
    expect(latest).toMatchObject({ version: 'v20', status: 'success', deployments: { success: 11, failure: 1 } });
    expect(latest!.finishedAt).toBeLessThanOrEqual(now() + TOLERANCE);
  }, 60_000);
});
