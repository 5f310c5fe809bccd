import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployctl, hasGroup, scrape } from '../helpers/cli.js';
import { select, value } from '../helpers/exposition.js';
import { startProxy } from '../helpers/proxy.js';
import { type RunningServer, startPushgateway, tempDir } from '../helpers/pushgateway.js';

let gateway: RunningServer;
let env: Record<string, string>;
const workdir = tempDir();

beforeAll(async () => {
  gateway = await startPushgateway();
  env = { DEPLOYCTL_PUSHGATEWAY_URL: gateway.url };
});

afterAll(async () => {
  await gateway?.stop();
  workdir.remove();
});

const record = (args: string[], extraEnv: Record<string, string> = {}) =>
  deployctl(['record', ...args], { env: { ...env, ...extraEnv }, cwd: workdir.path });

describe('deployctl record against a real Pushgateway', () => {
  it('carries counts, buckets and sums forward across five separate processes', async () => {
    const history = [
      { status: 'success', duration: '42' },
      { status: 'failure', duration: '3.5' },
      { status: 'success', duration: '600' },
      { status: 'cancelled', duration: '0.5' },
      { status: 'success', duration: '7200.25' },
    ];
    for (const [i, step] of history.entries()) {
      const result = await record([
        '--service',
        'five',
        '--env',
        'prod',
        '--status',
        step.status,
        '--duration',
        step.duration,
        '--version',
        `1.0.${i}`,
        '--commit',
        `c0ffee${i}`,
      ]);
      // The commits are not in a git repository here: successes say that no lead time was observed.
      expect(result.stderr).toBe(
        step.status === 'success'
          ? `deployctl: note: commit c0ffee${i} is not in a local git history and no --commit-time was given: no lead time observed\n`
          : '',
      );
      expect(result.exitCode).toBe(0);
    }

    const samples = await scrape(gateway.url);
    const group = { job: 'deployctl', service: 'five', environment: 'prod' };
    expect(value(samples, 'deployctl_deployments_total', { ...group, status: 'success' })).toBe(3);
    expect(value(samples, 'deployctl_deployments_total', { ...group, status: 'failure' })).toBe(1);
    expect(value(samples, 'deployctl_deployments_total', { ...group, status: 'cancelled' })).toBe(1);

    const success = { ...group, status: 'success' };
    expect(value(samples, 'deployctl_deployment_duration_seconds_count', success)).toBe(3);
    expect(value(samples, 'deployctl_deployment_duration_seconds_sum', success)).toBe(7842.25);
    const buckets = Object.fromEntries(
      select(samples, 'deployctl_deployment_duration_seconds_bucket', success).map((s) => [s.labels.le, s.value]),
    );
    expect(buckets).toEqual({
      '1': 0,
      '5': 0,
      '10': 0,
      '30': 0,
      '60': 1,
      '120': 1,
      '300': 1,
      '600': 2,
      '900': 2,
      '1800': 2,
      '3600': 2,
      '7200': 2,
      '+Inf': 3,
    });
    expect(value(samples, 'deployctl_deployment_duration_seconds_sum', { ...group, status: 'failure' })).toBe(3.5);
    expect(
      value(samples, 'deployctl_deployment_duration_seconds_bucket', { ...group, status: 'failure', le: '5' }),
    ).toBe(1);
    expect(
      value(samples, 'deployctl_deployment_duration_seconds_bucket', { ...group, status: 'cancelled', le: '1' }),
    ).toBe(1);

    const info = select(samples, 'deployctl_deployment_info', group);
    expect(info.map((s) => [s.labels.version, s.labels.commit, s.labels.status, s.value])).toEqual([
      ['1.0.4', 'c0ffee4', 'success', 1],
    ]);
    const lastDeployment = value(samples, 'deployctl_last_deployment_timestamp_seconds', group);
    expect(value(samples, 'deployctl_last_success_timestamp_seconds', group)).toBe(lastDeployment);
    expect(value(samples, 'deployctl_last_failure_timestamp_seconds', group)).toBeLessThan(lastDeployment);
    expect(Math.abs(lastDeployment - Date.now() / 1000)).toBeLessThan(60);
  });

  it('prints what it recorded and the totals now on the gateway', async () => {
    await record(['-s', 'talk', '-e', 'prod', '--status', 'failure', '--duration', '61']);
    const result = await record([
      '-s',
      'talk',
      '-e',
      'prod',
      '--status',
      'success',
      '--duration',
      '5',
      '--version',
      'v2',
    ]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(
      /^recorded success of talk in prod \(version v2, took 5s, restored after [\d.]+s, rework\); deployments now: success 1, failure 1, cancelled 0\n$/,
    );
  });

  it('gives machine-readable output with --json', async () => {
    const result = await record([
      '-s',
      'json',
      '-e',
      'stage',
      '--status',
      'success',
      '--started-at',
      '2026-01-01T10:00:00Z',
      '--finished-at',
      '2026-01-01T10:02:30Z',
      '--json',
    ]);
    expect(result.exitCode).toBe(0);
    const output = JSON.parse(result.stdout);
    expect(output).toMatchObject({
      recorded: true,
      service: 'json',
      environment: 'stage',
      job: 'deployctl',
      status: 'success',
      durationSeconds: 150,
      finishedAt: 1767261750,
      totals: { success: 1, failure: 0, cancelled: 0 },
    });
    const samples = await scrape(gateway.url);
    expect(value(samples, 'deployctl_last_deployment_timestamp_seconds', { service: 'json' })).toBe(1767261750);
  });

  it('keeps a service name with / and UTF-8 values intact through @base64 grouping', async () => {
    const service = 'team/payments/api';
    const environment = 'prod – eu/west ☁';
    const result = await record([
      '--service',
      service,
      '--env',
      environment,
      '--status',
      'success',
      '--version',
      'v1.0-ünïcødé "quoted"',
      '--label',
      'owner=Zoë \\ Ångström',
    ]);
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    await record([
      '--service',
      service,
      '--env',
      environment,
      '--status',
      'success',
      '--label',
      'owner=Zoë \\ Ångström',
    ]);
    const samples = await scrape(gateway.url);
    const group = { service, environment };
    expect(
      value(samples, 'deployctl_deployments_total', { ...group, status: 'success', owner: 'Zoë \\ Ångström' }),
    ).toBe(2);
    expect(select(samples, 'deployctl_deployment_info', group)[0]?.labels.version).toBe('');
    expect(await hasGroup(gateway.url, 'team')).toBe(false);
  });

  it('prints the exact URL and exposition under --dry-run and sends nothing', async () => {
    const result = await record(['-s', 'dry', '-e', 'prod', '--status', 'success', '--duration', '2', '--dry-run']);
    expect(result.exitCode).toBe(0);
    expect(result.stdout.split('\n')[0]).toBe(
      `POST ${gateway.url}/metrics/job@base64/ZGVwbG95Y3Rs/service@base64/ZHJ5/environment@base64/cHJvZA`,
    );
    expect(result.stdout).toContain('deployctl_deployments_total{status="success"} 1\n');
    expect(result.stdout).toContain('deployctl_deployment_duration_seconds_sum{status="success"} 2\n');
    expect(await hasGroup(gateway.url, 'dry')).toBe(false);
  });

  it('shows the push for a new group under --dry-run when the gateway is unreachable', async () => {
    const result = await record([
      '-s',
      'dry',
      '-e',
      'prod',
      '--status',
      'failure',
      '--dry-run',
      '--pushgateway',
      'http://127.0.0.1:9',
    ]);
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toMatch(
      /warning: could not GET .*ECONNREFUSED; showing the push for a group the gateway does not hold yet/,
    );
    expect(result.stdout).toContain('deployctl_deployments_total{status="failure"} 1\n');
  });

  it('never prints the password of a --pushgateway URL', async () => {
    const url = gateway.url.replace('http://', 'http://alice:s3cr3t-pw@');
    const result = await record([
      '-s',
      'secret',
      '-e',
      'prod',
      '--status',
      'success',
      '--dry-run',
      '--verbose',
      '--pushgateway',
      url,
    ]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout + result.stderr).not.toContain('s3cr3t-pw');
    expect(result.stdout.split('\n')[0]).toMatch(/^POST http:\/\/127\.0\.0\.1:\d+\/metrics\//);
  });

  it.each([
    [['--status', 'bogus'], /argument 'bogus' is invalid/],
    [['--status', 'success', '--service', ''], /--service must not be empty/],
    [['--status', 'success', '--env', '   '], /--env must not be empty/],
    [['--status', 'success', '--label', 'bad-name=x'], /"bad-name" is not a valid label name/],
    [['--status', 'success', '--label', 'status=x'], /reserved/],
    [['--status', 'success', '--label', 'novalue'], /must have the form key=value/],
    [['--status', 'success', '--duration', '-5'], /--duration must be a number of seconds/],
    [['--status', 'success', '--duration', 'ten'], /--duration must be a number of seconds/],
    [
      ['--status', 'success', '--started-at', '2026-01-01T10:00:00Z', '--finished-at', '2026-01-01T09:00:00Z'],
      /is before --started-at/,
    ],
    [['--status', 'success', '--started-at', 'yesterday'], /--started-at "yesterday" is not a timestamp/],
    [['--status', 'success', '--finished-at', '2026-02-30T00:00:00Z'], /is not a timestamp/],
    [['--status', 'success', '--duration', '5', '--started-at', '1767261600'], /either --duration or --started-at/],
    [['--status', 'success', '--version', 'line\nbreak'], /control character/],
    [['--status', 'success', '--timeout', '0'], /--timeout must be more than 0/],
    [['--status', 'success', '--pushgateway', 'ftp://x'], /must be an http/],
    [[], /--status is required/],
  ])('refuses %j with exit code 2 and pushes nothing', async (args, message) => {
    const result = await record(['--service', 'refused', '--env', 'prod', ...args]);
    expect(result.stderr).toMatch(message);
    expect(result.exitCode).toBe(2);
    expect(result.stdout).toBe('');
    expect(await hasGroup(gateway.url, 'refused')).toBe(false);
  });

  it('warns about a missing service and says how to give one, exit 0 (2 under --strict)', async () => {
    const result = await record(['--env', 'prod', '--status', 'success']);
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain('deployctl: warning: not recorded: no service given');
    expect(result.stderr).toContain('DEPLOYCTL_SERVICE');
    const strict = await record(['--env', 'prod', '--status', 'success', '--strict']);
    expect(strict.exitCode).toBe(2);
    expect(strict.stderr).toContain('no service given');
  });

  it('takes service and environment from the environment and a config file, flags winning', async () => {
    const dir = tempDir();
    try {
      writeFileSync(
        join(dir.path, '.deployctlrc.json'),
        JSON.stringify({ service: 'from-config', environment: 'cfg-env', labels: { team: 'core' } }),
      );
      const fromConfig = await deployctl(['record', '--status', 'success'], { env, cwd: dir.path });
      expect(fromConfig.exitCode).toBe(0);
      const fromEnv = await deployctl(['record', '--status', 'success'], {
        env: { ...env, DEPLOYCTL_SERVICE: 'from-env' },
        cwd: dir.path,
      });
      expect(fromEnv.exitCode).toBe(0);
      const fromFlag = await deployctl(['record', '--status', 'success', '-s', 'from-flag'], {
        env: { ...env, DEPLOYCTL_SERVICE: 'from-env' },
        cwd: dir.path,
      });
      expect(fromFlag.exitCode).toBe(0);
      const samples = await scrape(gateway.url);
      for (const service of ['from-config', 'from-env', 'from-flag']) {
        expect(
          value(samples, 'deployctl_deployments_total', {
            service,
            environment: 'cfg-env',
            status: 'success',
            team: 'core',
          }),
        ).toBe(1);
      }
    } finally {
      dir.remove();
    }
  });

  it('names the file, the key and the problem of a bad config; an unknown key is only a warning', async () => {
    const dir = tempDir();
    try {
      const file = join(dir.path, 'deployctl.config.json');
      writeFileSync(file, JSON.stringify({ service: 'x', timeout: 'soon', colour: 'red' }));
      const result = await deployctl(['record', '--env', 'prod', '--status', 'success', '--config', file], {
        env,
        cwd: dir.path,
      });
      expect(result.exitCode).toBe(0);
      expect(result.stderr).toContain(`not recorded: invalid config file ${file}`);
      expect(result.stderr).toMatch(/timeout: must be a number of seconds, not "soon"/);
      const strict = await deployctl(['record', '--env', 'prod', '--status', 'success', '--config', file, '--strict'], {
        env,
        cwd: dir.path,
      });
      expect(strict.exitCode).toBe(2);
      expect(await hasGroup(gateway.url, 'x')).toBe(false);

      writeFileSync(file, JSON.stringify({ service: 'unknown-key', colour: 'red' }));
      const unknown = await deployctl(['record', '--env', 'prod', '--status', 'success', '--config', file], {
        env,
        cwd: dir.path,
      });
      expect(unknown.exitCode).toBe(0);
      expect(unknown.stderr).toContain(`warning: ${file}: colour is not a deployctl setting; ignored`);
      expect(
        value(await scrape(gateway.url), 'deployctl_deployments_total', { service: 'unknown-key', status: 'success' }),
      ).toBe(1);
    } finally {
      dir.remove();
    }
  });

  it('keeps the record when the gateway is unreachable, exits 0 (1 under --strict), and flush sends it once', async () => {
    let up = false;
    const proxy = await startProxy(gateway.url, () => (up ? 'forward' : { status: 503, body: 'down for maintenance' }));
    try {
      const stateDir = join(workdir.path, 'down-state');
      const down = { DEPLOYCTL_PUSHGATEWAY_URL: proxy.url, DEPLOYCTL_STATE_DIR: stateDir };
      const lenient = await record(
        ['-s', 'down', '-e', 'prod', '--status', 'success', '--duration', '30', '--timeout', '1'],
        down,
      );
      expect(lenient.exitCode).toBe(0);
      expect(lenient.stderr).toMatch(
        /warning: success of down in prod is not on the gateway yet: the gateway at http:\/\/127\.0\.0\.1:\d+\/ refused to read the groups from it: HTTP 503: down for maintenance \(\d+ attempts in [\d.]+s\)\. It is kept in .*outbox.* and sent by the next deployctl command, or now with: deployctl flush/,
      );
      const strict = await record(
        ['-s', 'down', '-e', 'prod', '--status', 'failure', '--timeout', '1', '--strict'],
        down,
      );
      expect(strict.exitCode).toBe(1);
      expect(await hasGroup(gateway.url, 'down')).toBe(false);

      up = true;
      const flush = await deployctl(['flush'], { env: down, cwd: workdir.path });
      expect(flush.exitCode).toBe(0);
      expect(flush.stdout).toBe(`${proxy.url}/: sent 2 kept record(s); 0 still kept\n`);
      const again = await deployctl(['flush'], { env: down, cwd: workdir.path });
      expect(again.stdout).toBe('nothing kept: the outbox is empty\n');
    } finally {
      await proxy.close();
    }
    const samples = await scrape(gateway.url);
    expect(value(samples, 'deployctl_deployments_total', { service: 'down', status: 'success' })).toBe(1);
    expect(value(samples, 'deployctl_deployments_total', { service: 'down', status: 'failure' })).toBe(1);
    expect(value(samples, 'deployctl_deployment_duration_seconds_sum', { service: 'down', status: 'success' })).toBe(
      30,
    );
  });

  it('leaves an exposition on the gateway that promtool check metrics accepts', async () => {
    await record(['-s', 'lint', '-e', 'prod', '--status', 'failure', '--duration', '12', '--label', 'team=core']);
    const text = await (await fetch(`${gateway.url}/metrics`)).text();
    let complaints = '';
    try {
      execFileSync('promtool', ['check', 'metrics'], {
        input: text,
        encoding: 'utf8',
        stdio: ['pipe', 'pipe', 'pipe'],
      });
    } catch (error) {
      const err = error as { stdout: string; stderr: string };
      complaints = `${err.stdout}${err.stderr}`;
    }
    expect(text).toContain('deployctl_deployment_duration_seconds_bucket');
    expect(complaints.split('\n').filter((line) => line.includes('deployctl_'))).toEqual([]);
  });
});
