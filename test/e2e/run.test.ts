import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cliEnv, deployctl, gatewayEnv, gatewaySample, hasGroup, scrape } from '../helpers/cli.js';
import { select, value } from '../helpers/exposition.js';
import { TestRepo } from '../helpers/git.js';
import { type RunningServer, startPushgateway, tempDir } from '../helpers/pushgateway.js';
import { until } from '../helpers/wait.js';

let gateway: RunningServer;
const workdir = tempDir();
let env: Record<string, string>;

beforeAll(async () => {
  gateway = await startPushgateway();
  env = gatewayEnv(gateway.url, join(workdir.path, 'state'));
});
afterAll(async () => {
  await gateway?.stop();
  workdir.remove();
});

const cli = (args: string[], extra: { env?: Record<string, string>; cwd?: string } = {}) =>
  deployctl(args, { env: { ...env, ...extra.env }, cwd: extra.cwd ?? workdir.path });

const counts = async (service: string, environment = 'prod') => {
  const samples = await scrape(gateway.url);
  return Object.fromEntries(
    select(samples, 'deployctl_deployments_total', { service, environment }).map((s) => [s.labels.status, s.value]),
  );
};

describe('deployctl run', () => {
  it.each([
    [0, 'success'],
    [1, 'failure'],
    [7, 'failure'],
  ])('exits with the command’s exit code %i and records %s', async (code, status) => {
    const service = `exit-${code}`;
    const result = await cli(['run', '-s', service, '-e', 'prod', '--', 'sh', '-c', `exit ${code}`]);
    expect(result.exitCode).toBe(code);
    expect(await counts(service)).toMatchObject({ [status]: 1 });
    const samples = await scrape(gateway.url);
    expect(value(samples, 'deployctl_deployment_duration_seconds_count', { service, status })).toBe(1);
    expect(value(samples, 'deployctl_deployment_in_progress', { service })).toBe(0);
  });

  it('marks a command that runs past a second in progress while it runs, and a quicker one not at all', async () => {
    const gate = join(workdir.path, 'mark-gate');
    const running = cli([
      'run',
      '-s',
      'marked',
      '-e',
      'prod',
      '--',
      'sh',
      '-c',
      `while [ ! -e ${gate} ]; do sleep 0.05; done`,
    ]);
    const marked = () => gatewaySample(gateway.url, 'deployctl_deployment_in_progress', { service: 'marked' });
    await until(async () => (await marked()) === 1, 10_000, 100);
    expect(await marked()).toBe(1);
    writeFileSync(gate, '');
    expect((await running).exitCode).toBe(0);
    expect(value(await scrape(gateway.url), 'deployctl_deployment_in_progress', { service: 'marked' })).toBe(0);

    // A command over within the second: one read and one write of the group, no mark before them.
    const verbose = await cli(['run', '-s', 'quick', '-e', 'prod', '--verbose', '--', 'sh', '-c', 'sleep 0.2']);
    expect(verbose.exitCode).toBe(0);
    expect([...verbose.stderr.matchAll(/^deployctl: (GET|POST) /gm)].map((m) => m[1])).toEqual(['GET', 'POST']);
    expect(await counts('quick')).toEqual({ success: 1, failure: 0, cancelled: 0 });
  });

  it('exits 126, recording nothing, for a command the system refuses to start at once (ENOTDIR, ELOOP, ENAMETOOLONG)', async () => {
    const loop = join(workdir.path, 'loop');
    execFileSync('ln', ['-sf', loop, loop]);
    for (const [command, code] of [
      ['/etc/passwd/x', 'ENOTDIR'],
      [loop, 'ELOOP'],
      ['a'.repeat(5000), 'ENAMETOOLONG'],
    ] as const) {
      const result = await cli(['run', '-s', 'refused', '-e', 'prod', '--', command]);
      expect(result.exitCode, result.stderr).toBe(126);
      expect(result.stderr).toContain(`cannot execute (${code}); nothing recorded`);
      expect(result.stderr).not.toContain('unexpected error');
    }
    expect(await hasGroup(gateway.url, 'refused')).toBe(false);
  });

  it('exits 128+N when the command dies of signal N, recording a failure', async () => {
    const result = await cli(['run', '-s', 'killed', '-e', 'prod', '--', 'sh', '-c', 'kill -KILL $$']);
    expect(result.exitCode).toBe(137);
    expect(await counts('killed')).toEqual({ success: 0, failure: 1, cancelled: 0 });
  });

  it('passes the command’s stdout and stderr through byte for byte', async () => {
    const script = "printf 'out: \\303\\251\\001 no newline'; printf 'err line\\n\\nlast' >&2";
    const result = await cli(['run', '-s', 'bytes', '-e', 'prod', '--quiet', '--', 'sh', '-c', script]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe('out: é\u0001 no newline');
    expect(result.stderr).toBe('err line\n\nlast');
  });

  it('keeps stdout for the command when it reports, and passes arguments untouched', async () => {
    const result = await cli([
      'run',
      '-s',
      'args',
      '-e',
      'prod',
      '--',
      'node',
      '-e',
      'console.log(JSON.stringify(process.argv.slice(1)))',
      'a b',
      '$HOME',
      '"q"',
      '--flag',
    ]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe('["a b","$HOME","\\"q\\"","--flag"]\n');
    expect(result.stderr).toMatch(
      /^deployctl: recorded success of args in prod \(.*took [\d.]+s\); deployments now: success 1, failure 0, cancelled 0\n$/m,
    );
  });

  it('runs through a shell only with --shell', async () => {
    const result = await cli([
      'run',
      '-s',
      'shell',
      '-e',
      'prod',
      '--shell',
      '--quiet',
      '--',
      'echo $((6*7)) && exit 3',
    ]);
    expect(result.stdout).toBe('42\n');
    expect(result.exitCode).toBe(3);
  });

  it('gives 127 for a command that is not found and 126 for one that cannot run, recording nothing', async () => {
    const notFound = await cli(['run', '-s', 'nostart', '-e', 'prod', '--', './no-such-deploy.sh']);
    expect(notFound.exitCode).toBe(127);
    expect(notFound.stderr).toContain('deployctl: ./no-such-deploy.sh: command not found; nothing recorded');
    const plainFile = join(workdir.path, 'not-executable.sh');
    writeFileSync(plainFile, 'echo never\n', { mode: 0o644 });
    const notExecutable = await cli(['run', '-s', 'nostart', '-e', 'prod', '--', plainFile]);
    expect(notExecutable.exitCode).toBe(126);
    expect(notExecutable.stderr).toContain('cannot execute');
    // A command that never started is not a deployment: nothing counted, nothing left in progress.
    expect(await counts('nostart')).toEqual({});
    expect(await hasGroup(gateway.url, 'nostart')).toBe(false);
  });

  it('does not start the command when a flag is invalid, and exits 2', async () => {
    const marker = join(workdir.path, 'must-not-exist');
    for (const args of [
      ['--bogus'],
      ['--version', 'a\nb'],
      ['--label', 'bad-label=1'],
      ['--kill-after', 'soon'],
      ['--timeout', '-1'],
    ]) {
      const result = await cli(['run', '-s', 'invalid', '-e', 'prod', ...args, '--', 'touch', marker]);
      expect(result.exitCode, args.join(' ')).toBe(2);
      expect(existsSync(marker)).toBe(false);
    }
    expect(await counts('invalid')).toEqual({});
  });

  it('runs the command all the same when the service comes from nowhere, unless --strict', async () => {
    const marker = join(workdir.path, 'ran-without-service');
    const strict = await cli(['run', '-e', 'prod', '--strict', '--', 'touch', marker]);
    expect(strict.exitCode).toBe(2);
    expect(strict.stderr).toContain('no service given');
    expect(existsSync(marker)).toBe(false);
    const noTarget = await cli(['run', '-e', 'prod', '--', 'sh', '-c', `touch ${marker}; exit 3`]);
    expect(noTarget.exitCode).toBe(3);
    expect(noTarget.stderr).toContain('deployctl: warning: not recorded: no service given');
    expect(existsSync(marker)).toBe(true);
  });

  it('keeps the command’s exit code when the gateway is down', async () => {
    const result = await cli(
      ['run', '-s', 'down', '-e', 'prod', '--timeout', '1', '--', 'sh', '-c', 'echo deployed; exit 4'],
      {
        env: gatewayEnv('http://127.0.0.1:9', join(workdir.path, 'down')),
      },
    );
    expect(result.exitCode).toBe(4);
    expect(result.stdout).toBe('deployed\n');
    expect(result.stderr).toMatch(
      /warning: failure of down in prod is not on the gateway yet: .*ECONNREFUSED.* It is kept in/,
    );
  });

  async function startAndSignal(
    service: string,
    signal: NodeJS.Signals,
    childScript: string,
    extraArgs: string[] = [],
  ) {
    const child = execa(
      process.execPath,
      [BIN, 'run', '-s', service, '-e', 'prod', ...extraArgs, '--', process.execPath, '-e', childScript],
      {
        env: cliEnv({ HOME: workdir.path, ...env }),
        extendEnv: false,
        reject: false,
        timeout: 20_000,
      },
    );
    await new Promise<void>((resolve) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('ready')) resolve();
      });
    });
    const sentAt = Date.now();
    child.kill(signal);
    const result = await child;
    return { result, elapsedMs: Date.now() - sentAt };
  }

  it('passes SIGTERM on to the command, records the deployment as cancelled and exits as the command did', async () => {
    const { result } = await startAndSignal('sigterm', 'SIGTERM', "console.log('ready'); setInterval(() => {}, 1000)");
    expect(result.exitCode).toBe(143);
    expect(await counts('sigterm')).toEqual({ success: 0, failure: 0, cancelled: 1 });
  });

  it('lets a command that handles SIGINT clean up, still recording cancelled and exiting 130', async () => {
    const script =
      "process.on('SIGINT', () => { console.log('cleaning up'); process.exit(0); }); console.log('ready'); setInterval(() => {}, 1000)";
    const { result } = await startAndSignal('sigint', 'SIGINT', script);
    // A calling script must not carry on as if the deploy went through.
    expect(result.exitCode).toBe(130);
    expect(String(result.stdout)).toContain('cleaning up');
    expect(await counts('sigint')).toEqual({ success: 0, failure: 0, cancelled: 1 });
  });

  it('kills a command that ignores the signal after --kill-after', async () => {
    const script = "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000)";
    const { result, elapsedMs } = await startAndSignal('stubborn', 'SIGTERM', script, ['--kill-after', '0.5']);
    // 128 + SIGTERM: the signal deployctl received and passed on, not the SIGKILL that ended the command.
    expect(result.exitCode).toBe(143);
    expect(elapsedMs).toBeGreaterThanOrEqual(450);
    expect(await counts('stubborn')).toEqual({ success: 0, failure: 0, cancelled: 1 });
  });
});

describe('deployctl step', () => {
  it('times each step into deployctl_step_duration_seconds by step and status', async () => {
    const ok = await cli(['step', 'migrate', '-s', 'steps', '-e', 'prod', '--', 'sleep', '0.3']);
    expect(ok.exitCode).toBe(0);
    const failed = await cli(['step', 'smoke test', '-s', 'steps', '-e', 'prod', '--', 'sh', '-c', 'exit 5']);
    expect(failed.exitCode).toBe(5);
    const samples = await scrape(gateway.url);
    expect(
      value(samples, 'deployctl_step_duration_seconds_count', { service: 'steps', step: 'migrate', status: 'success' }),
    ).toBe(1);
    const migrate = value(samples, 'deployctl_step_duration_seconds_sum', { service: 'steps', step: 'migrate' });
    expect(migrate).toBeGreaterThanOrEqual(0.3);
    expect(migrate).toBeLessThan(5);
    expect(
      value(samples, 'deployctl_step_duration_seconds_count', {
        service: 'steps',
        step: 'smoke test',
        status: 'failure',
      }),
    ).toBe(1);
    expect(await counts('steps')).toEqual({});
  });
});

describe('deployctl start / finish', () => {
  it('marks the deployment in progress and times it across two processes', async () => {
    const start = await cli([
      'start',
      '-s',
      'two-step',
      '-e',
      'prod',
      '--version',
      '3.1.0',
      '--started-at',
      String(Math.floor(Date.now() / 1000) - 120),
    ]);
    expect(start.exitCode).toBe(0);
    let samples = await scrape(gateway.url);
    expect(value(samples, 'deployctl_deployment_in_progress', { service: 'two-step' })).toBe(1);

    const finish = await cli(['finish', '-s', 'two-step', '-e', 'prod', '--status', 'success']);
    expect(finish.exitCode).toBe(0);
    samples = await scrape(gateway.url);
    expect(value(samples, 'deployctl_deployment_in_progress', { service: 'two-step' })).toBe(0);
    const duration = value(samples, 'deployctl_deployment_duration_seconds_sum', {
      service: 'two-step',
      status: 'success',
    });
    expect(duration).toBeGreaterThanOrEqual(120);
    expect(duration).toBeLessThan(140);
    expect(select(samples, 'deployctl_deployment_info', { service: 'two-step' })[0]?.labels.version).toBe('3.1.0');
  });

  it('times a finish on another machine (another state directory) from the start kept on the gateway', async () => {
    const startedAt = Math.floor(Date.now() / 1000) - 300;
    await cli(['start', '-s', 'ci-steps', '-e', 'prod', '--started-at', String(startedAt)], {
      env: { DEPLOYCTL_STATE_DIR: join(workdir.path, 'machine-a') },
    });
    const finish = await cli(
      ['finish', '-s', 'ci-steps', '-e', 'prod', '--status', 'failure', '--finished-at', String(startedAt + 90)],
      {
        env: { DEPLOYCTL_STATE_DIR: join(workdir.path, 'machine-b') },
      },
    );
    expect(finish.exitCode).toBe(0);
    const samples = await scrape(gateway.url);
    expect(
      value(samples, 'deployctl_deployment_duration_seconds_sum', { service: 'ci-steps', status: 'failure' }),
    ).toBe(90);
    expect(value(samples, 'deployctl_deployment_in_progress', { service: 'ci-steps' })).toBe(0);
  });
});

describe('lead time and time to restore', () => {
  it('observes every newly deployed commit once, from a git history with fixed commit times', async () => {
    const dir = tempDir();
    try {
      const repo = new TestRepo(dir.path);
      const t0 = 1_767_225_600; // 2026-01-01T00:00:00Z
      repo.commit('one', t0);
      const c2 = repo.commit('two', t0 + 600);
      const first = await cli(
        ['record', '-s', 'lead', '-e', 'prod', '--status', 'success', '--finished-at', String(t0 + 3_600)],
        { cwd: dir.path },
      );
      expect(first.exitCode).toBe(0);
      expect(first.stderr).toContain('note: first deployment of this group: lead time of the deployed commit alone');

      repo.commit('three', t0 + 7_200);
      repo.commit('four', t0 + 9_000);
      const failed = await cli(
        ['record', '-s', 'lead', '-e', 'prod', '--status', 'failure', '--finished-at', String(t0 + 9_500)],
        { cwd: dir.path },
      );
      expect(failed.exitCode).toBe(0);
      const c5 = repo.commit('five', t0 + 10_000);
      const second = await cli(['run', '-s', 'lead', '-e', 'prod', '--', 'true'], { cwd: dir.path });
      expect(second.exitCode).toBe(0);

      const samples = await scrape(gateway.url);
      const group = { service: 'lead', environment: 'prod' };
      // First deploy: c2 alone (3000 s). Second: c3, c4, c5, but not c1 or c2 again.
      expect(value(samples, 'deployctl_lead_time_seconds_count', group)).toBe(4);
      const secondFinish = value(samples, 'deployctl_last_success_timestamp_seconds', group);
      const expectedSum = 3_000 + 3 * secondFinish - (3 * t0 + 7_200 + 9_000 + 10_000);
      expect(value(samples, 'deployctl_lead_time_seconds_sum', group)).toBeCloseTo(expectedSum, 2);
      expect(value(samples, 'deployctl_lead_time_seconds_bucket', { ...group, le: '3600' })).toBe(1);
      const info = select(samples, 'deployctl_deployment_info', group)[0]!.labels;
      expect(info.commit).toBe(c5);
      expect(info.version).toBe(c5);
      expect(c2).not.toBe(c5);
    } finally {
      dir.remove();
    }
  });

  it('uses git describe --tags for the version and falls back to the deployed commit alone in a shallow clone', async () => {
    const dir = tempDir();
    try {
      const origin = new TestRepo(join(dir.path, 'origin'));
      const t0 = 1_767_225_600;
      const c1 = origin.commit('one', t0);
      origin.commit('two', t0 + 100);
      origin.git('tag', 'v2.0.0');
      origin.commit('three', t0 + 200);
      mkdirSync(join(dir.path, 'clone'));
      const clone = join(dir.path, 'clone');
      await execa('git', ['clone', '-q', '--depth', '1', `file://${join(dir.path, 'origin')}`, clone]);

      const finishedAt = t0 + 1_000;
      await cli(
        [
          'record',
          '-s',
          'shallow',
          '-e',
          'prod',
          '--status',
          'success',
          '--commit',
          c1,
          '--commit-time',
          String(t0),
          '--finished-at',
          String(t0 + 500),
        ],
        { cwd: clone },
      );
      const result = await cli(
        ['record', '-s', 'shallow', '-e', 'prod', '--status', 'success', '--finished-at', String(finishedAt)],
        { cwd: clone },
      );
      expect(result.exitCode).toBe(0);
      expect(result.stderr).toMatch(
        /note: the local history ends at commit [0-9a-f]{12} \(where this shallow clone was cut\) before it reaches a commit deployed to this group: lead time of the deployed commit alone/,
      );
      const samples = await scrape(gateway.url);
      expect(value(samples, 'deployctl_lead_time_seconds_count', { service: 'shallow' })).toBe(2);
      expect(value(samples, 'deployctl_lead_time_seconds_sum', { service: 'shallow' })).toBe(500 + 800);

      const described = await cli(['record', '-s', 'described', '-e', 'prod', '--status', 'success'], {
        cwd: join(dir.path, 'origin'),
      });
      expect(described.exitCode).toBe(0);
      const version = select(await scrape(gateway.url), 'deployctl_deployment_info', { service: 'described' })[0]!
        .labels.version;
      expect(version).toMatch(/^v2\.0\.0-1-g[0-9a-f]+$/);
    } finally {
      dir.remove();
    }
  });

  it('gives one restore observation for failure, failure, success', async () => {
    const t0 = 1_767_225_600;
    for (const [status, at] of [
      ['success', t0],
      ['failure', t0 + 1_000],
      ['failure', t0 + 1_500],
      ['success', t0 + 4_000],
      ['success', t0 + 5_000],
    ] as const) {
      const result = await cli([
        'record',
        '-s',
        'restore',
        '-e',
        'prod',
        '--status',
        status,
        '--finished-at',
        String(at),
      ]);
      expect(result.exitCode).toBe(0);
    }
    const samples = await scrape(gateway.url);
    expect(value(samples, 'deployctl_time_to_restore_seconds_count', { service: 'restore' })).toBe(1);
    expect(value(samples, 'deployctl_time_to_restore_seconds_sum', { service: 'restore' })).toBe(3_000);
    expect(value(samples, 'deployctl_time_to_restore_seconds_bucket', { service: 'restore', le: '1800' })).toBe(0);
    expect(value(samples, 'deployctl_time_to_restore_seconds_bucket', { service: 'restore', le: '3600' })).toBe(1);
  });
});

describe('CI metadata', () => {
  it('takes commit, branch, repository and build URL from GitHub Actions, flags winning', async () => {
    const ci = {
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      GITHUB_SHA: 'abc123def',
      GITHUB_REF: 'refs/heads/main',
      GITHUB_REPOSITORY: 'acme/shop',
      GITHUB_SERVER_URL: 'https://github.example',
      GITHUB_RUN_ID: '4242',
      GITHUB_EVENT_NAME: 'push',
    };
    const result = await cli(['record', '-s', 'gha', '-e', 'prod', '--status', 'success', '--version', '1.2.3'], {
      env: ci,
    });
    expect(result.exitCode).toBe(0);
    const samples = await scrape(gateway.url);
    expect(select(samples, 'deployctl_deployment_info', { service: 'gha' })[0]!.labels).toMatchObject({
      commit: 'abc123def',
      version: '1.2.3',
    });
    expect(select(samples, 'deployctl_deployment_source_info', { service: 'gha' })[0]!.labels).toMatchObject({
      ci: 'github',
      branch: 'main',
      repository: 'acme/shop',
      build_url: 'https://github.example/acme/shop/actions/runs/4242',
    });
  });

  it('reads GitLab CI too', async () => {
    const ci = {
      CI: 'true',
      GITLAB_CI: 'true',
      CI_COMMIT_SHA: 'feedbeef',
      CI_COMMIT_REF_NAME: 'release',
      CI_PROJECT_PATH: 'acme/api',
      CI_JOB_URL: 'https://gitlab.example/acme/api/-/jobs/7',
      CI_PIPELINE_ID: '7',
    };
    const result = await cli(['record', '-s', 'gitlab', '-e', 'prod', '--status', 'failure', '--commit', 'override1'], {
      env: ci,
    });
    expect(result.exitCode).toBe(0);
    const samples = await scrape(gateway.url);
    expect(select(samples, 'deployctl_deployment_info', { service: 'gitlab' })[0]!.labels).toMatchObject({
      commit: 'override1',
      version: 'override1',
    });
    expect(select(samples, 'deployctl_deployment_source_info', { service: 'gitlab' })[0]!.labels).toMatchObject({
      ci: 'gitlab',
      branch: 'release',
      repository: 'acme/api',
    });
  });
});
