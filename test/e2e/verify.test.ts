import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningAlertmanager, startAlertmanager } from '../helpers/alertmanager.js';
import { deployctl, startDeployctl } from '../helpers/cli.js';
import { eventually, type RunningPrometheus, startPrometheus } from '../helpers/prometheus.js';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { freePort, type RunningServer, startPushgateway, tempDir } from '../helpers/pushgateway.js';
import { makePki, startTlsFront } from '../helpers/tls.js';
import { sleep } from '../helpers/wait.js';

/**
 * `deployctl verify` against a real Prometheus (scraping a real Pushgateway that holds the
 * application's metric the checks read) and a real Alertmanager. The verdict is the exit code:
 * 0 healthy, 1 not, 3 could not tell; a gate never passes on silence.
 */

const work = tempDir('deployctl-verify-');
let gateway: RunningServer;
let prometheus: RunningPrometheus;
let alertmanager: RunningAlertmanager;
/** Every query verify makes goes through this proxy: it counts them. */
let counted: TestProxy;
/** A "store" that answers every request with an HTML page (a login page, a wrong URL). */
let html: TestProxy;
let run = 0;

/** The application's error ratio for one service and environment, as Prometheus will scrape it. */
async function setErrorRatio(service: string, environment: string, value: number): Promise<void> {
  const response = await fetch(`${gateway.url}/metrics/job/app/service/${service}/environment/${environment}`, {
    method: 'PUT',
    body: `app_error_ratio ${value}\n`,
  });
  expect(response.ok).toBe(true);
  const seen = await eventually(
    () => prometheus.query(`app_error_ratio{service="${service}",environment="${environment}"}`),
    (r) => r.length === 1 && Number(r[0]!.value[1]) === value,
    30_000,
  );
  expect(Number(seen[0]!.value[1])).toBe(value);
}

function verify(args: string[], { stateDir = join(work.path, `state-${++run}`), timeout = 60_000 } = {}) {
  return deployctl(['verify', ...args], {
    env: { DEPLOYCTL_PUSHGATEWAY_URL: gateway.url, DEPLOYCTL_STATE_DIR: stateDir },
    timeout,
  });
}

const CHECK_OK = 'app_error_ratio{service="$service",environment="$environment"} <= 0.05';

beforeAll(async () => {
  gateway = await startPushgateway();
  prometheus = await startPrometheus(work.path, gateway.url);
  alertmanager = await startAlertmanager();
  counted = await startProxy(prometheus.url, () => 'forward');
  html = await startProxy(prometheus.url, () => ({
    status: 200,
    body: '<!doctype html><html><body>Sign in</body></html>',
  }));
  await setErrorRatio('api', 'prod', 0.01);
  await setErrorRatio('web', 'prod', 0.2);
}, 90_000);

afterAll(async () => {
  await counted?.close();
  await html?.close();
  await alertmanager?.close();
  await prometheus?.stop();
  await gateway?.stop();
  work.remove();
});

describe('deployctl verify', () => {
  it('exits 0 when a real metric keeps its bound, and says so check by check', async () => {
    const result = await verify([
      '-s',
      'api',
      '-e',
      'prod',
      '--prometheus',
      prometheus.url,
      '--check',
      CHECK_OK,
      '--for',
      '0',
    ]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('check 1: 0.01');
    expect(result.stdout).toContain('(bound <= 0.05)');
    expect(result.stdout).toContain('verified: api in prod is healthy (1 round)');
  });

  it('exits 1 when a metric is over its bound, naming the value and the bound', async () => {
    const result = await verify([
      '-s',
      'web',
      '-e',
      'prod',
      '--prometheus',
      prometheus.url,
      '--check',
      CHECK_OK,
      '--for',
      '0',
    ]);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toMatch(/FAIL check 1: 0\.2\{.*service="web".*\} {2}\(bound <= 0\.05\)/);
    expect(result.stdout).toContain('verification failed: web in prod');
  });

  it('with --json, gives the measurements of each round and the verdict', async () => {
    const result = await verify([
      '-s',
      'api',
      '-e',
      'prod',
      '--prometheus',
      prometheus.url,
      '--check',
      CHECK_OK,
      '--check',
      'app_error_ratio{service="$service"} > 0.5',
      '--for',
      '0',
      '--json',
    ]);
    expect(result.exitCode).toBe(1);
    const body = JSON.parse(result.stdout);
    expect(body.result).toBe('fail');
    expect(body.rounds).toHaveLength(1);
    const [first, second] = body.rounds[0].checks;
    expect(first).toMatchObject({
      name: 'check 1',
      query: 'app_error_ratio{service="api",environment="prod"}',
      bound: '<= 0.05',
      verdict: 'pass',
    });
    expect(first.samples).toHaveLength(1);
    expect(first.samples[0].value).toBe(0.01);
    expect(first.samples[0].labels).toMatchObject({ service: 'api', environment: 'prod', job: 'app' });
    expect(second).toMatchObject({ name: 'check 2', bound: '> 0.5', verdict: 'fail' });
    expect(body.recording).toMatchObject({ kind: 'verification', id: expect.any(String) });
  });

  it('exits 1 when an alert fires for the service and environment, naming it; 0 for another service', async () => {
    await alertmanager.post([
      { labels: { alertname: 'HighLatency', service: 'api', environment: 'staging', severity: 'page' } },
      { labels: { alertname: 'DiskFull', service: 'db', environment: 'staging' } },
    ]);
    const firing = await eventually(
      () => verify(['-s', 'api', '-e', 'staging', '--alertmanager', alertmanager.url, '--for', '0']),
      (r) => r.exitCode !== 0,
      20_000,
    );
    expect(firing.exitCode).toBe(1);
    expect(firing.stdout).toContain('FAIL alerts: firing: HighLatency');
    expect(firing.stdout).not.toContain('DiskFull');
    const other = await verify(['-s', 'web', '-e', 'staging', '--alertmanager', alertmanager.url, '--for', '0']);
    expect(other.exitCode).toBe(0);
    expect(other.stdout).toContain('ok   alerts: no alert firing');
    // The same service in another environment is not alerting either.
    const prod = await verify([
      '-s',
      'api',
      '-e',
      'prod',
      '--alertmanager',
      alertmanager.url,
      '--prometheus',
      prometheus.url,
      '--check',
      CHECK_OK,
      '--for',
      '0',
    ]);
    expect(prod.exitCode).toBe(0);
  });

  it('https Prometheus and Alertmanager signed by a private CA: trusted with --ca-file (0 and 1 as over http), refused without it (3, never 0)', async () => {
    const dir = join(work.path, 'pki');
    mkdirSync(dir);
    const pki = makePki(dir);
    const secureProm = await startTlsFront(prometheus.url, pki);
    const secureAm = await startTlsFront(alertmanager.url, pki);
    try {
      const check = (service: string, extra: string[]) =>
        verify([
          '-s',
          service,
          '-e',
          'prod',
          '--prometheus',
          secureProm.url,
          '--check',
          CHECK_OK,
          '--for',
          '0',
          ...extra,
        ]);
      expect((await check('api', ['--ca-file', pki.caCert])).exitCode).toBe(0);
      expect((await check('web', ['--ca-file', pki.caCert])).exitCode).toBe(1);
      expect((await check('api', ['--insecure'])).exitCode).toBe(0);
      const untrusted = await check('api', []);
      expect(untrusted.exitCode).toBe(3);
      expect(untrusted.stdout + untrusted.stderr).toContain(`could not reach Prometheus at ${secureProm.url}`);
      // dora reads the same Prometheus the same way.
      const env = { DEPLOYCTL_PUSHGATEWAY_URL: gateway.url, DEPLOYCTL_STATE_DIR: join(work.path, 'tls-dora') };
      const dora = await deployctl(['dora', '--prometheus', secureProm.url, '--ca-file', pki.caCert, '--json'], {
        env,
      });
      expect(dora.exitCode, dora.stderr).toBe(0);
      expect(JSON.parse(dora.stdout)).toHaveProperty('rows');
      const doraUntrusted = await deployctl(['dora', '--prometheus', secureProm.url], { env });
      expect(doraUntrusted.exitCode).not.toBe(0);
      expect(doraUntrusted.stderr).toContain(`could not reach Prometheus at ${secureProm.url}`);

      await alertmanager.post([{ labels: { alertname: 'TlsDown', service: 'secure', environment: 'prod' } }]);
      const alerts = (extra: string[]) =>
        verify(['-s', 'secure', '-e', 'prod', '--alertmanager', secureAm.url, '--for', '0', ...extra]);
      const firing = await eventually(
        () => alerts(['--ca-file', pki.caCert]),
        (r) => r.exitCode !== 0,
        20_000,
      );
      expect(firing.exitCode).toBe(1);
      expect(firing.stdout).toContain('FAIL alerts: firing: TlsDown');
      const refused = await alerts([]);
      expect(refused.exitCode).toBe(3);
      expect(refused.stdout + refused.stderr).toContain(`could not reach Alertmanager at ${secureAm.url}`);
    } finally {
      await secureProm.close();
      await secureAm.close();
    }
  });

  it('takes checks and label names from the config file', async () => {
    const config = join(work.path, 'verify.json');
    writeFileSync(
      config,
      JSON.stringify({
        prometheus: prometheus.url,
        verify: {
          alertmanager: alertmanager.url,
          serviceLabel: 'app',
          environmentLabel: 'stage',
          checks: [
            { name: 'error ratio', query: 'app_error_ratio{service="$service",environment="$environment"}', max: 0.05 },
            {
              name: 'some traffic',
              query: 'app_error_ratio{service="$service",environment="$environment"}',
              min: 0.02,
            },
          ],
        },
      }),
    );
    await alertmanager.post([{ labels: { alertname: 'ByAppLabel', app: 'api', stage: 'prod' } }]);
    const result = await eventually(
      () => verify(['-s', 'api', '-e', 'prod', '--config', config, '--for', '0', '--json']),
      (r) => JSON.parse(r.stdout).rounds[0].checks.at(-1).verdict === 'fail',
      20_000,
    );
    expect(result.exitCode).toBe(1);
    const checks = JSON.parse(result.stdout).rounds[0].checks;
    expect(checks.map((c: { name: string; verdict: string }) => [c.name, c.verdict])).toEqual([
      ['error ratio', 'pass'],
      ['some traffic', 'fail'],
      ['alerts', 'fail'],
    ]);
    expect(checks[2].alerts.map((a: { name: string }) => a.name)).toEqual(['ByAppLabel']);
    expect(checks[1].bound).toBe('>= 0.02');
  });

  it('exits 3 when a query has no data: silence is not health', async () => {
    const result = await verify([
      '-s',
      'api',
      '-e',
      'prod',
      '--prometheus',
      prometheus.url,
      '--check',
      'app_error_ratio{service="$service",environment="nowhere"} <= 1',
      '--for',
      '0',
    ]);
    expect(result.exitCode).toBe(3);
    expect(result.stdout).toContain('no data');
    expect(result.stdout).toContain('verification inconclusive');
  });

  it('exits 3, never 0, when the store refuses connections', async () => {
    const port = await freePort();
    const result = await verify([
      '-s',
      'api',
      '-e',
      'prod',
      '--prometheus',
      `http://127.0.0.1:${port}`,
      '--check',
      CHECK_OK,
      '--for',
      '2s',
      '--interval',
      '1s',
    ]);
    expect(result.exitCode).toBe(3);
    expect(result.stdout).toContain(`could not reach Prometheus at http://127.0.0.1:${port}/`);
  });

  it('exits 3 when the store answers HTML', async () => {
    const result = await verify([
      '-s',
      'api',
      '-e',
      'prod',
      '--prometheus',
      html.url,
      '--check',
      CHECK_OK,
      '--for',
      '0',
    ]);
    expect(result.exitCode).toBe(3);
    expect(result.stdout).toContain('no answer');
  });

  it('exits 3 when Alertmanager is unreachable, even if the checks pass', async () => {
    const port = await freePort();
    const result = await verify([
      '-s',
      'api',
      '-e',
      'prod',
      '--prometheus',
      prometheus.url,
      '--check',
      CHECK_OK,
      '--alertmanager',
      `http://127.0.0.1:${port}`,
      '--for',
      '0',
    ]);
    expect(result.exitCode).toBe(3);
    expect(result.stdout).toContain('could not reach Alertmanager');
  });

  it.each([
    ['up <= x', 'the bound "x" is not a number'],
    ['up', 'has no bound at its end'],
    ['<= 3', 'has no query before its bound'],
  ])('refuses --check %j with exit 2 and queries nothing', async (check, message) => {
    const before = counted.requests.length;
    const stateDir = join(work.path, 'bad-check');
    const result = await verify(['-s', 'api', '-e', 'prod', '--prometheus', counted.url, '--check', check], {
      stateDir,
    });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(message);
    expect(counted.requests.length).toBe(before);
    expect(() => readdirSync(join(stateDir, 'outbox'))).toThrow();
  });

  it('--dry-run prints the queries with the variables filled in and the Alertmanager request, and asks nothing', async () => {
    const before = counted.requests.length;
    const stateDir = join(work.path, 'dry-run');
    const result = await verify(
      [
        '-s',
        'api',
        '-e',
        'prod',
        '--prometheus',
        counted.url,
        '--check',
        CHECK_OK,
        '--alertmanager',
        alertmanager.url,
        '--dry-run',
      ],
      { stateDir },
    );
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('app_error_ratio{service="api",environment="prod"}');
    expect(result.stdout).toContain(
      `GET ${alertmanager.url}/api/v2/alerts?active=true&silenced=false&inhibited=false&filter=service="api"&filter=environment="prod"`,
    );
    expect(counted.requests.length).toBe(before);
    expect(() => readdirSync(join(stateDir, 'outbox'))).toThrow();
  });

  it('--for 3s --interval 1s runs several rounds', async () => {
    const result = await verify([
      '-s',
      'api',
      '-e',
      'prod',
      '--prometheus',
      prometheus.url,
      '--check',
      CHECK_OK,
      '--for',
      '3s',
      '--interval',
      '1s',
      '--json',
    ]);
    expect(result.exitCode).toBe(0);
    const body = JSON.parse(result.stdout);
    expect(body.result).toBe('pass');
    // One round at the start and one a second until 3 s have passed: 4 planned, never more.
    expect(body.rounds.length).toBeGreaterThanOrEqual(2);
    expect(body.rounds.length).toBeLessThanOrEqual(4);
    expect(body.rounds.every((r: { checks: { verdict: string }[] }) => r.checks[0]!.verdict === 'pass')).toBe(true);
  });

  it('fails when the metric turns bad during the window, and stops early', async () => {
    await setErrorRatio('turns', 'prod', 0.01);
    const before = counted.requests.length;
    const running = startDeployctl(
      [
        'verify',
        '-s',
        'turns',
        '-e',
        'prod',
        '--prometheus',
        counted.url,
        '--check',
        CHECK_OK,
        '--for',
        '60s',
        '--interval',
        '1s',
        '--json',
      ],
      { env: { DEPLOYCTL_PUSHGATEWAY_URL: gateway.url, DEPLOYCTL_STATE_DIR: join(work.path, 'turns') } },
    );
    let stdout = '';
    running.child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const stdoutClosed = new Promise((resolve) => running.child.stdout?.once('close', resolve));
    // Two rounds have asked Prometheus while the metric was healthy.
    for (let i = 0; i < 200 && counted.requests.length < before + 2; i++) await sleep(100);
    expect(counted.requests.length).toBeGreaterThanOrEqual(before + 2);
    await setErrorRatio('turns', 'prod', 0.5);
    const code = await running.exited;
    await stdoutClosed;
    expect(code).toBe(1);
    const body = JSON.parse(stdout);
    expect(body.result).toBe('fail');
    expect(body.rounds[0].checks[0].verdict).toBe('pass');
    expect(body.rounds.at(-1).checks[0].verdict).toBe('fail');
    expect(body.rounds.at(-1).checks[0].samples[0].value).toBe(0.5);
    // It stopped at the first failed round instead of running out its minute.
    expect(body.rounds.length).toBeLessThan(61);
    expect(body.rounds.filter((r: { checks: { verdict: string }[] }) => r.checks[0]!.verdict === 'fail')).toHaveLength(
      1,
    );
  }, 90_000);

  it('Ctrl-C stops it with 130 and records nothing', async () => {
    const before = counted.requests.length;
    const stateDir = join(work.path, 'interrupted');
    const running = startDeployctl(
      [
        'verify',
        '-s',
        'api',
        '-e',
        'prod',
        '--prometheus',
        counted.url,
        '--check',
        CHECK_OK,
        '--for',
        '60s',
        '--interval',
        '1s',
      ],
      { env: { DEPLOYCTL_PUSHGATEWAY_URL: gateway.url, DEPLOYCTL_STATE_DIR: stateDir } },
    );
    for (let i = 0; i < 200 && counted.requests.length < before + 1; i++) await sleep(100);
    expect(counted.requests.length).toBeGreaterThanOrEqual(before + 1);
    running.child.kill('SIGINT');
    expect(await running.exited).toBe(130);
    expect(running.stderr()).toContain('interrupted');
    const kept = (() => {
      try {
        return readdirSync(join(stateDir, 'outbox')).filter((f) => f.endsWith('.json'));
      } catch {
        return [];
      }
    })();
    expect(kept).toEqual([]);
  }, 60_000);
});
