// The smaller things a team trips over in its first hour with deployctl in CI: where the options
// go, URL mistakes, what is missing outside a checkout, shallow clones, GitLab's environment,
// run --json, a C locale and examples in --help.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { deployctl, keptRecords, scrape } from '../helpers/cli.js';
import { select, value } from '../helpers/exposition.js';
import { TestRepo } from '../helpers/git.js';
import { useGatewayAndWorkdir } from '../helpers/pushgateway.js';

const context = useGatewayAndWorkdir();
const dir = (name: string) => {
  const path = join(context.workdir.path, name);
  mkdirSync(path, { recursive: true });
  return path;
};
const info = async (service: string) =>
  select(await scrape(context.gateway.url), 'deployctl_deployment_info', { service }).map((s) => s.labels);

describe('the first hour in CI', () => {
  it('takes the options every command takes before the command: deployctl --config X record', async () => {
    const cwd = dir('config-first');
    const config = join(cwd, 'ci-deployctl.json');
    writeFileSync(
      config,
      JSON.stringify({ pushgateway: context.gateway.url, service: 'config-first', environment: 'prod' }),
    );
    const result = await deployctl(
      [
        '--config',
        config,
        '--timeout',
        '5',
        'record',
        '--status',
        'success',
        '--version',
        '1.0.0',
        '--commit',
        'abc',
        '--commit-time',
        '1767225600',
      ],
      { cwd, env: { DEPLOYCTL_STATE_DIR: join(cwd, 'state') } },
    );
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect(
      value(await scrape(context.gateway.url), 'deployctl_deployments_total', {
        service: 'config-first',
        status: 'success',
      }),
    ).toBe(1);
  });

  it('a gateway without http:// in front: add http://; nothing is recorded', async () => {
    const stateDir = join(dir('no-scheme'), 'state');
    const hostPort = context.gateway.url.replace(/^http:\/\//, '');
    const result = await deployctl(
      ['record', '-s', 'no-scheme', '-e', 'prod', '--status', 'success', '--pushgateway', hostPort],
      { env: { DEPLOYCTL_STATE_DIR: stateDir } },
    );
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toBe(
      `deployctl: --pushgateway is not a URL: "${hostPort}" has no http:// or https:// in front\n  add http:// (or https://): http://${hostPort}\n`,
    );
    expect(await info('no-scheme')).toEqual([]);
    expect(keptRecords(stateDir)).toEqual([]);
  });

  it('a password with an unencoded /: says why it is not a URL and how to encode it, never the password', async () => {
    const stateDir = join(dir('slash'), 'state');
    const hostPort = context.gateway.url.replace(/^http:\/\//, '');
    const result = await deployctl(
      [
        'record',
        '-s',
        'slash',
        '-e',
        'prod',
        '--status',
        'success',
        '--pushgateway',
        `http://ci:pa/SECR3T@${hostPort}`,
      ],
      { env: { DEPLOYCTL_STATE_DIR: stateDir } },
    );
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(
      '--pushgateway is not a URL: a user or password in it (before the @) has a /, ? or # that is not percent-encoded',
    );
    expect(result.stderr).toContain('/ as %2F');
    expect(`${result.stdout}${result.stderr}`).not.toContain('SECR3T');
    expect(await info('slash')).toEqual([]);
    expect(keptRecords(stateDir)).toEqual([]);
  });

  it('outside a git checkout in CI: one notice that version, commit and lead time are missing, and how to give them', async () => {
    const cwd = dir('no-checkout');
    const result = await deployctl(['record', '-s', 'no-checkout', '-e', 'prod', '--status', 'success'], {
      cwd,
      env: { DEPLOYCTL_PUSHGATEWAY_URL: context.gateway.url, DEPLOYCTL_STATE_DIR: join(cwd, 'state'), CI: 'true' },
    });
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toBe(
      `deployctl: note: not in a git checkout (${cwd}): no version, commit or lead time recorded; give --version, --commit, --commit-time (for lead time), or run deployctl in the repository's checkout\n`,
    );
    expect((await info('no-checkout')).map((l) => [l.version, l.commit])).toEqual([['', '']]);
  });

  it('in a shallow clone without a tag in sight: the version is the short commit, and a notice says so', async () => {
    const origin = new TestRepo(join(dir('shallow'), 'origin'));
    origin.commit('one', 1_767_225_600);
    origin.git('tag', 'v1.0.0');
    const head = origin.commit('two', 1_767_225_700);
    const clone = join(context.workdir.path, 'shallow', 'clone');
    await execa('git', ['clone', '-q', '--depth', '1', `file://${origin.path}`, clone]);
    const result = await deployctl(['record', '-s', 'shallow', '-e', 'prod', '--status', 'success'], {
      cwd: clone,
      env: { DEPLOYCTL_PUSHGATEWAY_URL: context.gateway.url, DEPLOYCTL_STATE_DIR: join(clone, '..', 'state') },
    });
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain(
      `deployctl: note: this shallow clone shows no tag, so the version is the short commit ${head.slice(0, 12)}; fetch the tags`,
    );
    expect((await info('shallow')).map((l) => [l.version, l.commit])).toEqual([[head.slice(0, 12), head]]);
  });

  it("takes GitLab's CI_ENVIRONMENT_NAME as the environment", async () => {
    const cwd = dir('gitlab');
    const result = await deployctl(
      ['record', '-s', 'gitlab-env', '--status', 'success', '--commit', 'abc', '--version', '1'],
      {
        cwd,
        env: {
          DEPLOYCTL_PUSHGATEWAY_URL: context.gateway.url,
          DEPLOYCTL_STATE_DIR: join(cwd, 'state'),
          CI: 'true',
          GITLAB_CI: 'true',
          CI_ENVIRONMENT_NAME: 'review/feature-x',
        },
      },
    );
    expect(result.exitCode).toBe(0);
    expect((await info('gitlab-env')).map((l) => l.environment)).toEqual(['review/feature-x']);
  });

  it("run --json: the JSON document on stderr, as run --help says; stdout is the command's own", async () => {
    const cwd = dir('run-json');
    const help = await deployctl(['run', '--help']);
    expect(help.stdout).toMatch(/--json\s+machine-readable result as one JSON line on\s+stderr/);
    const result = await deployctl(
      ['run', '-s', 'run-json', '-e', 'prod', '--json', '--version', '1', '--commit', 'abc', '--', 'echo', 'deployed'],
      { cwd, env: { DEPLOYCTL_PUSHGATEWAY_URL: context.gateway.url, DEPLOYCTL_STATE_DIR: join(cwd, 'state') } },
    );
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe('deployed\n');
    const document = result.stderr.split('\n').find((line) => line.startsWith('{'));
    expect(JSON.parse(document!)).toMatchObject({ recorded: true, status: 'success', service: 'run-json' });
  });

  it('a C locale gets ASCII marks; a UTF-8 one the ticks', async () => {
    const doctor = (locale: Record<string, string>) =>
      deployctl(['doctor', '-s', 'locale', '-e', 'prod'], {
        cwd: dir('locale'),
        env: {
          DEPLOYCTL_PUSHGATEWAY_URL: context.gateway.url,
          DEPLOYCTL_STATE_DIR: join(dir('locale'), 'state'),
          ...locale,
        },
      });
    for (const locale of [
      { LC_ALL: 'C' } as Record<string, string>,
      { LANG: 'C' },
      { LANG: 'en_US.ISO-8859-1' },
      { LC_ALL: 'POSIX', LANG: 'en_US.UTF-8' },
    ]) {
      const result = await doctor(locale);
      const text = `${result.stdout}${result.stderr}`;
      expect(text, JSON.stringify(locale)).toMatch(/^OK /m);
      expect(text, JSON.stringify(locale)).toMatch(/^[\t\n\x20-\x7e]*$/);
    }
    const utf8 = await doctor({ LC_ALL: 'C.UTF-8' });
    expect(utf8.stdout).toMatch(/^✔ /m);
  });

  it('--help ends with examples', async () => {
    for (const command of ['record', 'run', 'dora']) {
      const help = await deployctl([command, '--help']);
      expect(help.exitCode).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`\\nExamples:\\n  \\$ deployctl ${command} `));
    }
    const top = await deployctl(['--help']);
    expect(top.stdout).toContain('go before or after it');
    expect(top.stdout).toContain('  $ deployctl --config ci/deployctl.json status');
  });
});
