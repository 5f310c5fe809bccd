import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deployctl, hasGroup, scrape } from '../helpers/cli.js';
import { value } from '../helpers/exposition.js';
import { TestRepo } from '../helpers/git.js';
import { startPushgateway, useGatewayAndWorkdir } from '../helpers/pushgateway.js';

const context = useGatewayAndWorkdir();
const stateDir = (name: string) => join(context.workdir.path, `state-${name}`);

describe('what a newcomer trips over', () => {
  it('accepts --environment, the config key, as --env', async () => {
    const result = await deployctl(['record', '--service', 'alias', '--environment', 'prod', '--status', 'success'], {
      env: { DEPLOYCTL_PUSHGATEWAY_URL: context.gateway.url },
      cwd: context.workdir.path,
    });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(
      'recorded success of alias in prod; deployments now: success 1, failure 0, cancelled 0\n',
    );
  });

  it("finds the repository's config file from a subfolder, and not above the repository", async () => {
    const outer = join(context.workdir.path, 'outer');
    const repo = new TestRepo(join(outer, 'repo'));
    writeFileSync(
      join(outer, '.deployctlrc.json'),
      JSON.stringify({ service: 'outside', environment: 'nowhere', pushgateway: 'http://127.0.0.1:9' }),
    );
    writeFileSync(
      join(repo.path, '.deployctlrc.json'),
      JSON.stringify({ service: 'from-root', environment: 'staging', pushgateway: context.gateway.url }),
    );
    const sub = join(repo.path, 'deploy', 'scripts');
    mkdirSync(sub, { recursive: true });
    const result = await deployctl(
      ['record', '--status', 'success', '--commit', 'abc', '--commit-time', '1767261600'],
      { cwd: sub },
    );
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/^recorded success of from-root in staging/);
    const doctor = await deployctl(['doctor'], { cwd: sub });
    expect(doctor.stdout).toContain(`config file   ${join(repo.path, '.deployctlrc.json')}\n`);
  });

  it('says when delete is given a group that does not exist, and deletes nothing', async () => {
    const env = { DEPLOYCTL_PUSHGATEWAY_URL: context.gateway.url };
    await deployctl(['record', '-s', 'keep-me', '-e', 'prod', '--status', 'success'], {
      env,
      cwd: context.workdir.path,
    });
    const missing = await deployctl(['delete', '-s', 'keep-me', '-e', 'prd', '--yes'], {
      env,
      cwd: context.workdir.path,
    });
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toBe(
      `deployctl: there is no group of keep-me in prd (job deployctl) on ${context.gateway.url}/: nothing deleted\n  keep-me has groups in: "prod"\n`,
    );
    const unknown = await deployctl(['delete', '-s', 'never-seen', '-e', 'prod', '--yes'], {
      env,
      cwd: context.workdir.path,
    });
    expect(unknown.exitCode).toBe(1);
    expect(unknown.stderr).toBe(
      `deployctl: there is no group of never-seen in prod (job deployctl) on ${context.gateway.url}/: nothing deleted\n  deployctl status lists the groups the gateway holds\n`,
    );
    expect(await hasGroup(context.gateway.url, 'keep-me')).toBe(true);
  });

  it('names the real command in the hint after a usage error', async () => {
    const badOption = await deployctl(['record', '--bogus']);
    expect(badOption.exitCode).toBe(2);
    expect(badOption.stderr).toBe("error: unknown option '--bogus'\n(run deployctl record --help for its options)\n");
    const badCommand = await deployctl(['recrod']);
    expect(badCommand.exitCode).toBe(2);
    expect(badCommand.stderr).toContain('(run deployctl --help for the commands)\n');
    expect(badCommand.stderr).not.toContain('<command>');
  });
});

describe('gateway URL mistakes', () => {
  const record = (url: string, name: string) =>
    deployctl(['record', '-s', 'url', '-e', 'prod', '--status', 'success', '--pushgateway', url], {
      env: { DEPLOYCTL_STATE_DIR: stateDir(name) },
      cwd: context.workdir.path,
    });

  it('a /metrics suffix: names the address to use', async () => {
    const result = await record(`${context.gateway.url}/metrics`, 'metrics');
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain(
      `deployctl: warning: the URL ends in /metrics, where Prometheus scrapes the gateway; deployctl needs the gateway's own address: --pushgateway ${context.gateway.url}\n`,
    );
  });

  it('a path prefix the gateway does not serve: names the root address and --web.route-prefix', async () => {
    const result = await record(`${context.gateway.url}/pushgateway/`, 'prefix');
    expect(result.stderr).toContain(
      `deployctl: warning: nothing answers under the path /pushgateway: if the gateway serves at the root, use --pushgateway ${context.gateway.url}; if it runs with --web.route-prefix, give that prefix\n`,
    );
  });

  it('https to a plain-HTTP gateway: says so at once instead of retrying', async () => {
    const https = context.gateway.url.replace('http:', 'https:');
    const started = Date.now();
    const result = await record(https, 'https');
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain(
      `deployctl: warning: the gateway speaks plain HTTP, not HTTPS: use --pushgateway ${context.gateway.url}\n`,
    );
  });
});

describe('git and long histories', () => {
  it('notes when git refuses the repository for its ownership, with the fix', async () => {
    const repo = new TestRepo(join(context.workdir.path, 'not-mine'));
    repo.commit('first', 1_767_261_600);
    // git's own switch for "another user owns this repository", so the test needs no second user.
    const result = await deployctl(['record', '-s', 'owned', '-e', 'prod', '--status', 'success'], {
      env: { DEPLOYCTL_PUSHGATEWAY_URL: context.gateway.url, GIT_TEST_ASSUME_DIFFERENT_OWNER: '1' },
      cwd: repo.path,
    });
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toBe(
      `deployctl: warning: git refuses the repository at ${repo.path} (it belongs to another user, "dubious ownership"), so the commit, version and lead time do not come from git; fix: git config --global --add safe.directory ${repo.path}\n`,
    );
  });

  it('summarises the lead times of 60 new commits in one short line', async () => {
    const repo = new TestRepo(join(context.workdir.path, 'sixty'));
    const base = 1_767_261_600;
    const first = repo.commit('c0', base);
    const env = { DEPLOYCTL_PUSHGATEWAY_URL: context.gateway.url };
    await deployctl(
      [
        'record',
        '-s',
        'sixty',
        '-e',
        'prod',
        '--status',
        'success',
        '--commit',
        first,
        '--finished-at',
        String(base + 60),
      ],
      { env, cwd: repo.path },
    );
    // Commits one minute apart; deployed one hour after the first of them.
    for (let i = 1; i <= 60; i++) repo.commit(`c${i}`, base + i * 60);
    const finishedAt = base + 60 * 60 + 3600;
    const result = await deployctl(
      [
        'record',
        '-s',
        'sixty',
        '-e',
        'prod',
        '--status',
        'success',
        '--version',
        '2.0.0',
        '--finished-at',
        String(finishedAt),
      ],
      { env, cwd: repo.path },
    );
    // Lead times: finishedAt - (base + i*60) for i = 1..60, from 3600 s (i = 60) to 7140 s (i = 1); median (5370 + 5400) / 2 = 5385 s.
    expect(result.stdout).toBe(
      'recorded success of sixty in prod (version 2.0.0, lead time 1h0m to 1h59m over 60 commits, median 1h29m); deployments now: success 2, failure 0, cancelled 0\n',
    );
    expect(value(await scrape(context.gateway.url), 'deployctl_lead_time_seconds_count', { service: 'sixty' })).toBe(
      61,
    );
  });
});

describe("doctor and the gateway's persistence", () => {
  it('warns, without failing, when the gateway keeps nothing across restarts', async () => {
    const result = await deployctl(['doctor'], {
      env: { DEPLOYCTL_PUSHGATEWAY_URL: context.gateway.url, DEPLOYCTL_STATE_DIR: stateDir('doctor') },
      cwd: context.workdir.path,
    });
    expect(result.stdout).toContain(
      '! the gateway keeps its metrics in memory only (no --persistence.file): a restart loses every group, and the deployment totals start again from zero\n' +
        '  fix: start the Pushgateway with --persistence.file=/var/lib/prometheus/pushgateway.db (any writable path)\n',
    );
    expect(result.exitCode).toBe(0);
  });

  it('says the metrics are kept when the gateway has a persistence file', async () => {
    const file = join(context.workdir.path, 'gateway.db');
    const persistent = await startPushgateway([`--persistence.file=${file}`]);
    try {
      const result = await deployctl(['doctor'], {
        env: { DEPLOYCTL_PUSHGATEWAY_URL: persistent.url, DEPLOYCTL_STATE_DIR: stateDir('doctor2') },
        cwd: context.workdir.path,
      });
      expect(result.stdout).toContain(`✔ the gateway keeps its metrics across restarts (--persistence.file ${file})\n`);
      expect(result.stdout).not.toContain('memory only');
    } finally {
      await persistent.stop();
    }
  });
});
