import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { keptRecords, scrape } from '../helpers/cli.js';
import { select, value } from '../helpers/exposition.js';
import { TestRepo } from '../helpers/git.js';
import { rawControls, startHostileServer } from '../helpers/hostile-server.js';
import { freePort, useGatewayAndWorkdir } from '../helpers/pushgateway.js';
import { startPrometheusReceiver } from '../helpers/victoria-metrics.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const context = useGatewayAndWorkdir();

interface ActionYaml {
  runs: { using: string; main: string; pre?: string };
  inputs: Record<string, { default?: string; required?: boolean }>;
  outputs: Record<string, { description: string }>;
}

/**
 * The repository as `actions/checkout` leaves it: the tracked files, nothing built, nothing
 * installed (not even a node_modules that is a link, which the ignore rule for the folder misses).
 */
function plainCheckout(): string {
  const dir = join(context.workdir.path, 'action-checkout');
  if (existsSync(dir)) return dir;
  for (const file of execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: root,
    encoding: 'utf8',
  })
    .split('\0')
    .filter((file) => file !== '' && file !== 'node_modules')) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    copyFileSync(join(root, file), join(dir, file));
  }
  return dir;
}

let workspace: { dir: string; sha: string } | undefined;
/** The repository the workflow deploys, checked out into GITHUB_WORKSPACE. */
function githubWorkspace(): { dir: string; sha: string } {
  if (workspace) return workspace;
  const dir = join(context.workdir.path, 'workspace');
  const sha = new TestRepo(dir).commit('first', 1_767_261_600);
  workspace = { dir, sha };
  return workspace;
}

interface ActionRun {
  exitCode: number;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  /** What the step wrote to GITHUB_STEP_SUMMARY. */
  summary: string;
  /** What the step saved with GITHUB_STATE, for the steps after it (STATE_<name>). */
  state: Record<string, string>;
}

interface StepOptions {
  /** Which entry of action.yml the runner starts. */
  entry?: 'pre' | 'main';
  /** The state an earlier entry of the action saved (the runner gives it as STATE_<name>). */
  state?: Record<string, string>;
  /** Runs the step with its clock moved (faketime: "-90s"). */
  clock?: string;
}

/**
 * Runs the action the way a runner does: `node <main>` from the checkout, with INPUT_* for the
 * `with:` values and the declared defaults, GITHUB_* for the run, and a GITHUB_OUTPUT file.
 */
async function runAction(
  inputs: Record<string, string>,
  extraEnv: Record<string, string> = {},
  { entry = 'main', state = {}, clock }: StepOptions = {},
): Promise<ActionRun> {
  const checkout = plainCheckout();
  const action = parse(readFileSync(join(checkout, 'action.yml'), 'utf8')) as ActionYaml;
  const { dir, sha } = githubWorkspace();
  const step = Math.random().toString(36).slice(2);
  const outputFile = join(context.workdir.path, `output-${step}`);
  const summaryFile = join(context.workdir.path, `summary-${step}`);
  const stateFile = join(context.workdir.path, `state-${step}`);
  for (const file of [outputFile, summaryFile, stateFile]) writeFileSync(file, '');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: join(context.workdir.path, 'runner-home'),
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    GITHUB_WORKSPACE: dir,
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    GITHUB_STATE: stateFile,
    GITHUB_SHA: sha,
    GITHUB_REF: 'refs/heads/main',
    GITHUB_REF_NAME: 'main',
    GITHUB_REF_TYPE: 'branch',
    GITHUB_REPOSITORY: 'acme/shop',
    GITHUB_SERVER_URL: 'https://github.example',
    GITHUB_RUN_ID: '4242',
    GITHUB_RUN_ATTEMPT: '2',
    GITHUB_EVENT_NAME: 'push',
    ...Object.fromEntries(Object.entries(state).map(([name, value]) => [`STATE_${name}`, value])),
    ...extraEnv,
  };
  for (const [name, spec] of Object.entries(action.inputs)) {
    const given = inputs[name] ?? spec.default;
    if (given !== undefined) env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = given;
  }
  const result = await new Promise<{ exitCode: number; stdout: string; stderr: string }>((resolve) => {
    const script = join(checkout, entry === 'pre' ? action.runs.pre! : action.runs.main);
    const child = execFile(
      clock ? 'faketime' : process.execPath,
      clock ? ['-f', clock, process.execPath, script] : [script],
      { env, cwd: dir, timeout: 30_000 },
      (error, stdout, stderr) => {
        resolve({ exitCode: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
      },
    );
    child.stdin?.end();
  });
  return {
    ...result,
    outputs: parseOutputs(readFileSync(outputFile, 'utf8')),
    summary: readFileSync(summaryFile, 'utf8'),
    state: parseOutputs(readFileSync(stateFile, 'utf8')),
  };
}

/** GITHUB_OUTPUT as the runner reads it: name=value lines and name<<DELIMITER blocks. */
function parseOutputs(text: string): Record<string, string> {
  const outputs: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const end = lines.indexOf(heredoc[2]!, i + 1);
      outputs[heredoc[1]!] = lines.slice(i + 1, end).join('\n');
      i = end;
    } else if (line.includes('=')) {
      outputs[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
    }
  }
  return outputs;
}

describe('the GitHub Action', () => {
  it('is a node24 JavaScript action with a pre step, whose committed main is current with src/', () => {
    const action = parse(readFileSync(join(root, 'action.yml'), 'utf8')) as ActionYaml;
    expect(action.runs).toEqual({ using: 'node24', pre: 'action/pre.mjs', main: 'action/index.mjs' });
    expect(Object.keys(action.inputs).sort()).toEqual(
      [
        'commit',
        'environment',
        'labels',
        'prometheus',
        'pushgateway',
        'remote-write',
        'started-at',
        'service',
        'status',
        'strict',
        'timeout',
        'version',
      ].sort(),
    );
    expect(
      execFileSync('git', ['ls-files', 'action/index.mjs', 'action/pre.mjs'], { cwd: root, encoding: 'utf8' }),
    ).toBe('action/index.mjs\naction/pre.mjs\n');
    execFileSync(process.execPath, ['scripts/build.mjs', '--check', 'action/index.mjs'], { cwd: root });
  });

  it('the currency check notices a stale file', () => {
    const stale = join(context.workdir.path, 'stale-index.mjs');
    writeFileSync(stale, `${readFileSync(join(root, 'action/index.mjs'), 'utf8')}\n// edited\n`);
    expect(() =>
      execFileSync(process.execPath, ['scripts/build.mjs', '--check', stale], { cwd: root, stdio: 'pipe' }),
    ).toThrow(/is not current with src\//);
  });

  it('records the job from a plain checkout, with commit, branch and run from GitHub, masks the password and sets the totals', async () => {
    const { sha } = githubWorkspace();
    const url = new URL(context.gateway.url);
    url.username = 'ci';
    url.password = encodeURIComponent('pa ss%word');
    const inputs = {
      service: 'shop/api',
      environment: 'production',
      pushgateway: url.toString(),
      labels: 'team=payments\nregion=eu',
    };

    const failed = await runAction({ ...inputs, status: 'failure', version: '2.0.0' });
    expect(failed.stderr).toBe('');
    expect(failed.exitCode).toBe(0);
    const success = await runAction({ ...inputs, status: 'success', version: '2.0.1' });
    expect(success.exitCode).toBe(0);
    const cancelled = await runAction({ ...inputs, status: 'cancelled', version: '2.0.2' });
    expect(cancelled.exitCode).toBe(0);

    // The password is masked, written and decoded, before any other line; it appears nowhere else.
    // The runner reads a command's data with %25, %0D and %0A unescaped.
    const lines = success.stdout.split('\n');
    const unescape = (data: string) => data.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%');
    expect(lines.slice(0, 2).map(unescape)).toEqual(['::add-mask::pa%20ss%25word', '::add-mask::pa ss%word']);
    expect(lines.slice(2).join('\n')).not.toMatch(/pa.ss/);
    expect(success.stdout).toContain(
      'deployctl: recorded success of shop/api in production; deployments now: success 1, failure 1, cancelled 0\n',
    );

    expect(success.outputs).toMatchObject({
      status: 'success',
      recorded: 'true',
      'success-total': '1',
      'failure-total': '1',
      'cancelled-total': '0',
      'deployments-total': '2',
    });
    expect(cancelled.outputs).toMatchObject({
      status: 'cancelled',
      recorded: 'true',
      'cancelled-total': '1',
      'deployments-total': '3',
    });
    const json = JSON.parse(success.outputs.json!) as Record<string, unknown>;
    const run = 'https://github.example/acme/shop/actions/runs/4242/attempts/2';
    expect(json).toMatchObject({
      commit: sha,
      source: { ci: 'github', branch: 'main', repository: 'acme/shop', buildUrl: run },
    });

    const samples = await scrape(context.gateway.url);
    const group = { job: 'deployctl', service: 'shop/api', environment: 'production' };
    for (const status of ['success', 'failure', 'cancelled']) {
      expect(value(samples, 'deployctl_deployments_total', { ...group, status, team: 'payments', region: 'eu' })).toBe(
        1,
      );
    }
    expect(select(samples, 'deployctl_deployment_source_info', group).map((s) => s.labels)).toEqual([
      { ...group, ci: 'github', branch: 'main', repository: 'acme/shop', build_url: run, instance: '' },
    ]);
    expect(
      select(samples, 'deployctl_deployment_info', group).map((s) => [
        s.labels.version,
        s.labels.commit,
        s.labels.status,
      ]),
    ).toEqual([['2.0.2', sha, 'cancelled']]);
  });

  it("maps GitHub's job.status spellings and records nothing for a skipped job", async () => {
    const inputs = { service: 'shop/web', environment: 'staging', pushgateway: context.gateway.url };
    expect((await runAction({ ...inputs, status: 'Cancelled' })).outputs.status).toBe('cancelled');
    const skipped = await runAction({ ...inputs, status: 'skipped' });
    expect(skipped.exitCode).toBe(0);
    expect(skipped.stdout).toBe('::notice::deployctl: the job was skipped: no deployment to record\n');
    const samples = await scrape(context.gateway.url);
    expect(
      select(samples, 'deployctl_deployments_total', { service: 'shop/web' })
        .map((s) => [s.labels.status, s.value])
        .sort(),
    ).toEqual([
      ['cancelled', 1],
      ['failure', 0],
      ['success', 0],
    ]);
  });

  it('never fails the job over a gateway that is down, unless strict', async () => {
    const down = `http://127.0.0.1:${await freePort()}`;
    const inputs = {
      service: 'shop/down',
      environment: 'production',
      pushgateway: down,
      status: 'success',
      timeout: '1',
    };
    const lenient = await runAction(inputs);
    expect(lenient.exitCode).toBe(0);
    expect(lenient.stdout).toContain('::warning::deployctl: the deployment is not on the gateway yet');
    expect(lenient.stderr).toContain('is not on the gateway yet');
    expect(lenient.outputs).toMatchObject({ status: 'success', recorded: 'false' });

    const strict = await runAction({ ...inputs, strict: 'true' });
    expect(strict.exitCode).toBe(1);
    expect(strict.stdout).toContain('::error::deployctl: record exited with 1');
  });

  it('turns a missing status into a warning, and into a failure only under strict', async () => {
    const lenient = await runAction({
      service: 'shop/api',
      environment: 'production',
      pushgateway: context.gateway.url,
    });
    expect(lenient.exitCode).toBe(0);
    expect(lenient.stdout).toBe(
      '::warning::deployctl: the status input is empty: give it `status: ${{ job.status }}`; nothing was recorded\n',
    );
    const strict = await runAction({
      service: 'shop/api',
      environment: 'production',
      pushgateway: context.gateway.url,
      status: 'done',
      strict: 'true',
    });
    expect(strict.exitCode).toBe(1);
    expect(strict.stdout).toBe(
      '::error::deployctl: the status input is "done", not success, failure or cancelled; nothing was recorded\n',
    );
  });

  const OUTPUTS = [
    'status',
    'recorded',
    'success-total',
    'failure-total',
    'cancelled-total',
    'deployments-total',
    'duration-seconds',
    'json',
  ];
  const seconds = () => Date.now() / 1000;

  it('times the deploy from the started-at input, and fills every output on the Pushgateway', async () => {
    const group = { service: 'shop/timed', environment: 'production' };
    const startedAt = Math.floor(seconds()) - 90;
    const before = seconds();
    const step = await runAction({
      ...group,
      pushgateway: context.gateway.url,
      status: 'success',
      'started-at': String(startedAt),
    });
    const after = seconds();
    expect(step.exitCode).toBe(0);
    expect(Object.keys(step.outputs).sort()).toEqual([...OUTPUTS].sort());
    for (const name of OUTPUTS) expect(step.outputs[name], name).not.toBe('');
    const duration = Number(step.outputs['duration-seconds']);
    // Finished between the moments the step was started and had ended: about 90 s after its start.
    expect(duration).toBeGreaterThanOrEqual(Math.floor(before) - startedAt);
    expect(duration).toBeLessThanOrEqual(Math.ceil(after) - startedAt);
    expect(step.outputs).toMatchObject({
      status: 'success',
      recorded: 'true',
      'success-total': '1',
      'failure-total': '0',
      'cancelled-total': '0',
      'deployments-total': '1',
    });
    expect(step.summary).toContain(`deployctl: recorded success of shop/timed in production (${duration} s)`);
    const samples = await scrape(context.gateway.url);
    const labels = { job: 'deployctl', ...group };
    expect(value(samples, 'deployctl_last_deployment_duration_seconds', labels)).toBe(duration);
    expect(value(samples, 'deployctl_deployment_duration_seconds_sum', labels)).toBe(duration);
  });

  it("takes the start at the job's start in its pre step, marks the deployment in progress, and times it", async () => {
    const group = { service: 'shop/pre', environment: 'production' };
    const inputs = { ...group, pushgateway: context.gateway.url };
    const labels = { job: 'deployctl', ...group };
    // The job started 90 s ago: the pre step runs then (its clock 90 s behind this one).
    const beforePre = seconds();
    const pre = await runAction(inputs, {}, { entry: 'pre', clock: '-90s' });
    const afterPre = seconds();
    expect(pre.exitCode).toBe(0);
    expect(pre.stdout).not.toContain('::');
    const startedAt = Number(pre.state.deployctl_started_at);
    expect(startedAt).toBeGreaterThanOrEqual(Math.floor(beforePre) - 91);
    expect(startedAt).toBeLessThanOrEqual(Math.ceil(afterPre) - 89);
    expect(pre.state.deployctl_marked).toBe('true');
    // The start is also kept on the runner (a self-hosted one outlives the job) until main closes it.
    const kept = join(context.workdir.path, 'runner-home', '.local', 'state', 'deployctl', 'started');
    expect(readdirSync(kept)).toHaveLength(1);
    let samples = await scrape(context.gateway.url);
    expect(value(samples, 'deployctl_deployment_in_progress', labels)).toBe(1);
    expect(value(samples, 'deployctl_deployment_started_timestamp_seconds', labels)).toBe(startedAt);

    const before = seconds();
    const main = await runAction({ ...inputs, status: 'failure' }, {}, { state: pre.state });
    const after = seconds();
    expect(main.exitCode).toBe(0);
    const duration = Number(main.outputs['duration-seconds']);
    expect(duration).toBeGreaterThanOrEqual(Math.floor(before) - startedAt);
    expect(duration).toBeLessThanOrEqual(Math.ceil(after) - startedAt);
    expect(duration).toBeGreaterThanOrEqual(89);
    expect(readdirSync(kept)).toEqual([]);
    samples = await scrape(context.gateway.url);
    expect(value(samples, 'deployctl_deployment_in_progress', labels)).toBe(0);
    expect(value(samples, 'deployctl_last_deployment_duration_seconds', labels)).toBe(duration);
    expect(main.outputs).toMatchObject({ status: 'failure', 'failure-total': '1', 'deployments-total': '1' });
  });

  it('refuses a missing or empty target with an error annotation that names the input, and records nothing', async () => {
    const stateDir = join(context.workdir.path, 'no-target-state');
    const env = { DEPLOYCTL_STATE_DIR: stateDir };
    const group = { service: 'shop/nowhere', environment: 'production', status: 'success' };
    for (const inputs of [group, { ...group, pushgateway: '' }, { ...group, pushgateway: '  ' }]) {
      const step = await runAction(inputs, env);
      expect(step.exitCode).toBe(0);
      const errors = step.stdout.split('\n').filter((line) => line.startsWith('::error::'));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(
        /^::error::deployctl: the `pushgateway` input is empty or missing .*nothing was recorded/,
      );
      expect(step.stdout).not.toContain('::warning::');
      expect(step.outputs).toMatchObject({ status: 'success', recorded: 'false', 'deployments-total': '' });
    }
    const strict = await runAction({ ...group, strict: 'true' }, env);
    expect(strict.exitCode).toBe(1);
    expect(strict.stdout).toContain('::error::deployctl: the `pushgateway` input is empty or missing');
    // The pre step names no target either: it keeps the start and marks nothing.
    const pre = await runAction(group, env, { entry: 'pre' });
    expect(pre.exitCode).toBe(0);
    expect(pre.stdout).toContain('not marked in progress');
    expect(keptRecords(stateDir)).toEqual([]);
    expect(existsSync(stateDir)).toBe(false);
  });

  it('with remote-write to a Prometheus receiver: marks the start in its pre step, times the deploy, fills every output, totals read from the store', async () => {
    const receiver = await startPrometheusReceiver(join(context.workdir.path, 'receiver'));
    try {
      const group = { service: 'shop/rw', environment: 'production' };
      const inputs = { ...group, 'remote-write': receiver.writeUrl };
      // The job's start, 90 s ago, marked in progress on the store by the pre step.
      const pre = await runAction(inputs, {}, { entry: 'pre', clock: '-90s' });
      expect(pre.exitCode).toBe(0);
      expect(pre.stdout).not.toContain('::');
      const jobStart = Number(pre.state.deployctl_started_at);
      const starts = await receiver.query(
        'last_over_time(deployctl_deployment_started_timestamp_seconds{service="shop/rw"}[1h])',
      );
      expect(starts.map((s) => Number(s.value[1]))).toEqual([jobStart]);
      const beforeFailed = seconds();
      const failed = await runAction({ ...inputs, status: 'failure' }, {}, { state: pre.state });
      const afterFailed = seconds();
      expect(failed.exitCode).toBe(0);
      const failedDuration = Number(failed.outputs['duration-seconds']);
      expect(failedDuration).toBeGreaterThanOrEqual(Math.floor(beforeFailed) - jobStart);
      expect(failedDuration).toBeLessThanOrEqual(Math.ceil(afterFailed) - jobStart);
      expect(failedDuration).toBeGreaterThanOrEqual(89);
      expect(failed.outputs).toMatchObject({ 'failure-total': '1', 'deployments-total': '1' });
      const startedAt = Math.floor(seconds()) - 90;
      const before = seconds();
      const success = await runAction({ ...inputs, status: 'success', 'started-at': String(startedAt) });
      const after = seconds();
      expect(success.exitCode).toBe(0);
      for (const name of OUTPUTS) expect(success.outputs[name], name).not.toBe('');
      expect(success.outputs).toMatchObject({
        status: 'success',
        recorded: 'true',
        'success-total': '1',
        'failure-total': '1',
        'cancelled-total': '0',
        'deployments-total': '2',
      });
      const duration = Number(success.outputs['duration-seconds']);
      expect(duration).toBeGreaterThanOrEqual(Math.floor(before) - startedAt);
      expect(duration).toBeLessThanOrEqual(Math.ceil(after) - startedAt);
      expect(success.stdout).toContain(
        `deployctl: recorded success of shop/rw in production (${duration} s); deployments now: success 1, failure 1, cancelled 0\n`,
      );
      const counts = await receiver.query(
        'count by (status) (count_over_time(deployctl_deployment_finished_timestamp_seconds{service="shop/rw"}[1h]))',
      );
      expect(counts.map((s) => [s.metric.status, s.value[1]]).sort()).toEqual([
        ['failure', '1'],
        ['success', '1'],
      ]);
    } finally {
      await receiver.stop();
    }
  });
});

describe('the action against a hostile gateway', () => {
  it('never lets the server’s text start a workflow command, and sets no output it did not mean', async () => {
    const server = await startHostileServer(400);
    try {
      const run = await runAction({
        service: 'shop/hostile',
        environment: 'production',
        pushgateway: server.url,
        status: 'success',
      });
      expect(run.exitCode).toBe(0);
      const output = `${run.stdout}${run.stderr}`;
      expect(rawControls(output)).toEqual([]);
      // Between stop-commands and its token the runner reads no workflow command; outside them only deployctl's own.
      const lines = output.split('\n');
      const stop = lines.findIndex((line) => line.startsWith('::stop-commands::'));
      expect(stop).toBeGreaterThanOrEqual(0);
      const token = lines[stop]!.slice('::stop-commands::'.length);
      expect(token).toMatch(/^deployctl-[0-9a-f-]{36}$/);
      const commands = lines.filter(
        (line, at) => line.startsWith('::') && (at < stop || at > lines.indexOf(`::${token}::`)),
      );
      expect(commands.filter((line) => line.startsWith('::set-output'))).toEqual([]);
      expect(lines.filter((line) => line.startsWith('::set-output'))).toEqual([]);
      expect(run.outputs.recorded).not.toBe('true');
    } finally {
      await server.close();
    }
  });
});
