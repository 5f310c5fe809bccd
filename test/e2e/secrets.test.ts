import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, deployctl, deployments } from '../helpers/cli.js';
import { type DelayProxy, startDelayProxy } from '../helpers/delay-proxy.js';
import { type RunningServer, startPushgateway, tempDir } from '../helpers/pushgateway.js';
import { writeWebConfig } from '../helpers/tls.js';
import { until } from '../helpers/wait.js';

/**
 * No password, token or URL credential in any output (plain, --verbose, --json, errors), outbox
 * file or state file, for well-formed and malformed URLs alike; none in a wrapped command's
 * environment. Against a real gateway with basic auth.
 */
const USER = 'deploy';
/** A password with /, @ and : in it; each secret carries a marker that must appear nowhere. */
const PASSWORD = '1234/S3CRETpw@x:y';
const TOKEN = 'T0KENsecret-9f8e7d';
const CONFIG_PASSWORD = 'C0NFIGpw/@:z';
const FILE_PASSWORD = 'F1LEpw/@:w';
const MARKERS = ['S3CRETpw', 'T0KENsecret', 'C0NFIGpw', 'F1LEpw', 'WR0NGpw'];

const workdir = tempDir();
let basic: RunningServer;
let plain: RunningServer;
let slow: DelayProxy;
let holdUp = 0;

beforeAll(async () => {
  const config = writeWebConfig(join(workdir.path, 'web.yml'), {
    users: { [USER]: PASSWORD, cfg: CONFIG_PASSWORD, file: FILE_PASSWORD },
  });
  [basic, plain] = await Promise.all([startPushgateway([`--web.config.file=${config}`]), startPushgateway()]);
  slow = await startDelayProxy(basic.url, { before: () => holdUp, after: () => 0 });
});
afterAll(async () => {
  await slow?.close();
  await basic?.stop();
  await plain?.stop();
  workdir.remove();
});

const hostPort = (url: string) => url.replace(/^http:\/\//, '');
const encoded = (user: string, password: string, url: string) =>
  `http://${user}:${encodeURIComponent(password)}@${hostPort(url)}`;

const cli = (args: string[], env: Record<string, string>, cwd = workdir.path) =>
  deployctl(args, { env: { DEPLOYCTL_STATE_DIR: join(workdir.path, 'state'), ...env }, cwd });

/** Every file under dir, read whole (outbox, quarantine, started notes, anything). */
function allFiles(dir: string): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  const walk = (path: string) => {
    let st;
    try {
      st = statSync(path);
    } catch {
      return;
    }
    if (st.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
    else out.push({ path, text: readFileSync(path, 'latin1') });
  };
  walk(dir);
  return out;
}

/** Fails naming where a secret marker (or its percent-encoded form) turned up. */
function expectNoSecret(results: CliResult[], stateDir = join(workdir.path, 'state')) {
  const places = [
    ...results.flatMap((r, i) => [
      { where: `stdout #${i}`, text: r.stdout },
      { where: `stderr #${i}`, text: r.stderr },
    ]),
    ...allFiles(stateDir).map((f) => ({ where: f.path, text: f.text })),
  ];
  const found = places.flatMap(({ where, text }) =>
    MARKERS.filter((m) => text.includes(m) || text.includes(encodeURIComponent(m))).map((m) => `${m} in ${where}`),
  );
  expect(found).toEqual([]);
}

const basicAuth = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
/** Successful deployments of `service` on the gateway with basic auth, read with its credentials. */
const counted = (service: string) =>
  deployments(basic.url, service, 'success', { headers: { authorization: basicAuth } });

describe('secrets stay secret', () => {
  it('a URL password with /, @ and : (percent-encoded): records, and appears in no output, outbox or state file', async () => {
    const env = { DEPLOYCTL_PUSHGATEWAY_URL: encoded(USER, PASSWORD, basic.url) };
    const results = [
      await cli(['record', '-s', 'url-pw', '-e', 'prod', '--status', 'success', '--verbose'], env),
      await cli(['record', '-s', 'url-pw', '-e', 'prod', '--status', 'success', '--json'], env),
      await cli(['start', '-s', 'url-pw', '-e', 'prod', '--verbose'], env),
      await cli(['finish', '-s', 'url-pw', '-e', 'prod', '--status', 'success', '--json', '--verbose'], env),
      await cli(['status', '--json', '--verbose'], env),
      await cli(['doctor', '-s', 'url-pw', '-e', 'prod', '--verbose'], env),
      await cli(['record', '-s', 'url-pw', '-e', 'prod', '--status', 'success', '--dry-run', '--verbose'], env),
    ];
    expect(results.slice(0, 5).map((r) => r.exitCode)).toEqual([0, 0, 0, 0, 0]);
    expect(await counted('url-pw')).toBe(3);
    // A wrong password: refused, and neither password is shown.
    results.push(
      await cli(['record', '-s', 'url-pw', '-e', 'prod', '--status', 'success', '--verbose', '--json'], {
        DEPLOYCTL_PUSHGATEWAY_URL: encoded(USER, 'WR0NGpw/@:', basic.url),
      }),
    );
    expect(results.at(-1)!.stderr).toMatch(/401/);
    expectNoSecret(results);
  });

  it('a malformed URL with the password unencoded: warned about without it, and the command still runs without it', async () => {
    const raw = `http://${USER}:${PASSWORD}@${hostPort(basic.url)}`; // http://deploy:1234/S3CRETpw@x:y@127.0.0.1:PORT
    const simple = `http://deploy:1234/S3CRETpw@${hostPort(basic.url)}`;
    const results: CliResult[] = [];
    for (const url of [raw, simple]) {
      const flag = await cli(
        ['record', '-s', 'bad-url', '-e', 'prod', '--status', 'success', '--pushgateway', url, '--verbose', '--json'],
        {},
      );
      expect(flag.exitCode).toBe(2);
      const fromEnv = await cli(['record', '-s', 'bad-url', '-e', 'prod', '--status', 'success', '--verbose'], {
        DEPLOYCTL_PUSHGATEWAY_URL: url,
      });
      expect(fromEnv.exitCode).toBe(0);
      expect(fromEnv.stderr).toContain('not recorded: DEPLOYCTL_PUSHGATEWAY_URL has an @ after its host');
      const run = await cli(['run', '-s', 'bad-url', '-e', 'prod', '--', 'sh', '-c', 'env; exit 3'], {
        DEPLOYCTL_PUSHGATEWAY_URL: url,
      });
      expect(run.exitCode).toBe(3);
      expect(run.stdout).not.toMatch(/^DEPLOYCTL_PUSHGATEWAY_URL=/m);
      const config = join(workdir.path, `bad-url-${results.length}`);
      mkdirSync(config, { recursive: true });
      writeFileSync(
        join(config, '.deployctlrc.json'),
        JSON.stringify({ pushgateway: url, service: 'bad-url', environment: 'prod' }),
      );
      const fromConfig = await cli(['run', '--', 'sh', '-c', 'exit 4'], {}, config);
      expect(fromConfig.exitCode).toBe(4);
      const doctor = await cli(['doctor', '--verbose'], {}, config);
      expect(doctor.exitCode).toBe(2);
      results.push(flag, fromEnv, run, fromConfig, doctor);
    }
    expect(await counted('bad-url')).toBe(0);
    expectNoSecret(results);
  });

  it('DEPLOYCTL_PUSHGATEWAY_PASSWORD and _TOKEN: used, never shown, and not passed to the wrapped command', async () => {
    const env = {
      DEPLOYCTL_PUSHGATEWAY_URL: basic.url,
      DEPLOYCTL_PUSHGATEWAY_USERNAME: USER,
      DEPLOYCTL_PUSHGATEWAY_PASSWORD: PASSWORD,
    };
    const results = [
      await cli(['record', '-s', 'env-pw', '-e', 'prod', '--status', 'success', '--verbose', '--json'], env),
      await cli(['run', '-s', 'env-pw', '-e', 'prod', '--verbose', '--', 'env'], env),
      await cli(['run', '-s', 'env-pw', '-e', 'prod', '--', 'env'], {
        ...env,
        DEPLOYCTL_PUSHGATEWAY_URL: encoded(USER, PASSWORD, basic.url),
        DEPLOYCTL_PUSHGATEWAY_PASSWORD: 'WR0NGpw',
      }),
    ];
    expect(results.map((r) => r.exitCode)).toEqual([0, 0, 0]);
    expect(await counted('env-pw')).toBe(2); // the third used the wrong password from the environment
    for (const run of results.slice(1)) {
      const childEnv = run.stdout.split('\n').filter((line) => line.startsWith('DEPLOYCTL_'));
      expect(childEnv.filter((line) => /PASSWORD|TOKEN/.test(line))).toEqual([]);
      expect(childEnv).toContain(`DEPLOYCTL_PUSHGATEWAY_URL=${basic.url}/`);
      expect(childEnv).toContain(`DEPLOYCTL_PUSHGATEWAY_USERNAME=${USER}`);
    }
    // A token: the basic-auth gateway refuses it (401), the plain one takes it; neither shows it.
    const token = { DEPLOYCTL_PUSHGATEWAY_TOKEN: TOKEN };
    results.push(
      await cli(['record', '-s', 'env-token', '-e', 'prod', '--status', 'success', '--verbose', '--json'], {
        ...token,
        DEPLOYCTL_PUSHGATEWAY_URL: basic.url,
      }),
      await cli(['record', '-s', 'env-token', '-e', 'prod', '--status', 'success', '--verbose', '--json'], {
        ...token,
        DEPLOYCTL_PUSHGATEWAY_URL: plain.url,
      }),
      await cli(['run', '-s', 'env-token', '-e', 'prod', '--verbose', '--', 'env'], {
        ...token,
        DEPLOYCTL_PUSHGATEWAY_URL: plain.url,
      }),
      await cli(['doctor', '-s', 'env-token', '-e', 'prod', '--verbose'], {
        ...token,
        DEPLOYCTL_PUSHGATEWAY_URL: plain.url,
      }),
    );
    expect(results[3]!.stderr).toContain('401');
    expect(results[5]!.stdout.split('\n').filter((line) => line.startsWith('DEPLOYCTL_PUSHGATEWAY_TOKEN'))).toEqual([]);
    expect(await deployments(plain.url, 'env-token')).toBe(2);
    expectNoSecret(results);
  });

  it('a record kept while the gateway is slow holds no credential; flush sends it with the current configuration’s', async () => {
    const stateDir = join(workdir.path, 'kept-state');
    const env = { DEPLOYCTL_STATE_DIR: stateDir, DEPLOYCTL_PUSHGATEWAY_URL: encoded(USER, PASSWORD, slow.url) };
    holdUp = 3_000;
    const kept = await cli(
      ['record', '-s', 'kept-pw', '-e', 'prod', '--status', 'success', '--timeout', '0.5', '--verbose', '--json'],
      env,
    );
    const run = await cli(['run', '-s', 'kept-pw', '-e', 'prod', '--timeout', '0.5', '--', 'sh', '-c', 'exit 0'], env);
    holdUp = 0;
    expect(kept.exitCode).toBe(0);
    expect(kept.stderr).toContain('is not on the gateway yet');
    const files = allFiles(join(stateDir, 'outbox')).filter((f) => f.path.endsWith('.json'));
    expect(files).toHaveLength(2);
    for (const file of files)
      expect((JSON.parse(file.text) as { target: { url: string } }).target.url).toBe(`${slow.url}/`);
    const dry = await cli(['flush', '--dry-run', '--verbose'], env);
    expect(dry.stdout).toContain(`would send 2 kept record(s) to ${slow.url}/:`);
    // The held requests are answered (401 or not) and gone.
    expect(await until(() => slow.pending() === 0, 10_000)).toBe(true);
    const flush = await cli(['flush', '--verbose', '--json'], env);
    expect(flush.exitCode).toBe(0);
    expect(await counted('kept-pw')).toBe(2);
    expectNoSecret([kept, run, dry, flush], stateDir);
  }, 20_000);

  it('auth.password and auth.passwordFile in a config file: never echoed, also when the config is invalid; a file others can read is warned about', async () => {
    const dir = join(workdir.path, 'config-secrets');
    mkdirSync(dir, { recursive: true });
    const stateDir = join(dir, 'state');
    const env = { DEPLOYCTL_STATE_DIR: stateDir };
    const write = (config: object) =>
      writeFileSync(
        join(dir, '.deployctlrc.json'),
        JSON.stringify({ pushgateway: basic.url, service: 'cfg-pw', environment: 'prod', ...config }),
      );

    write({ auth: { username: 'cfg', password: CONFIG_PASSWORD } });
    const results = [
      await cli(['record', '--status', 'success', '--verbose', '--json'], env, dir),
      await cli(['doctor', '--verbose'], env, dir),
    ];
    expect(results[0]!.exitCode).toBe(0);
    write({
      auth: { username: 'cfg', password: CONFIG_PASSWORD },
      timeout: 'soon',
      pushgateway: `http://cfg:${CONFIG_PASSWORD}@${hostPort(basic.url)}`,
    });
    results.push(
      await cli(['record', '--status', 'success', '--verbose'], env, dir),
      await cli(['run', '--', 'sh', '-c', 'exit 3'], env, dir),
      await cli(['doctor', '--verbose'], env, dir),
    );
    expect(results.slice(2).map((r) => r.exitCode)).toEqual([0, 3, 2]);
    expect(results[2]!.stderr).toContain('not recorded: invalid config file');
    write({ auth: { username: 'cfg', password: 42 } });
    results.push(await cli(['record', '--status', 'success'], env, dir));
    expect(results.at(-1)!.stderr).toContain('not recorded');

    const secretFile = join(dir, 'pw.txt');
    writeFileSync(secretFile, `${FILE_PASSWORD}\n`);
    chmodSync(secretFile, 0o644);
    write({ auth: { username: 'file', passwordFile: secretFile } });
    const open = await cli(['record', '--status', 'success', '--verbose', '--json'], env, dir);
    expect(open.exitCode).toBe(0);
    expect(open.stderr).toContain(
      `${secretFile} can be read by every user (mode 644); make it private with chmod 600 ${secretFile}`,
    );
    chmodSync(secretFile, 0o640);
    const group = await cli(['record', '--status', 'success'], env, dir);
    expect(group.stderr).toContain('can be read by its group (mode 640)');
    chmodSync(secretFile, 0o600);
    const closed = await cli(['record', '--status', 'success'], env, dir);
    expect(closed.stderr).toBe('');
    results.push(open, group, closed);
    expect(await counted('cfg-pw')).toBe(4);
    expectNoSecret(results, stateDir);
  });
});
