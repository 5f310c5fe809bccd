import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, deployctl } from '../helpers/cli.js';
import { type RunningServer, startPushgateway, tempDir } from '../helpers/pushgateway.js';
import { clientTlsFlags, makePki, type TestPki, writeWebConfig } from '../helpers/tls.js';

const PASSWORD = 'pw-Zx9!q"s3cr3t';
const TOKEN = 'tok-4f1c2b9e8d7a6';
const workdir = tempDir();
let pki: TestPki;
let basic: RunningServer;
let mtls: RunningServer;

function outputs(...results: CliResult[]): string {
  return results.map((r) => `${r.stdout}\n${r.stderr}`).join('\n');
}

/** What the gateway holds, read with the right credentials through curl. */
function fetchText(url: string, init: RequestInit = {}): Promise<string> {
  return fetch(url, init).then((r) => r.text());
}

beforeAll(async () => {
  pki = makePki(workdir.path);
  const basicConfig = writeWebConfig(join(workdir.path, 'basic.yml'), { users: { alice: PASSWORD } });
  basic = await startPushgateway([`--web.config.file=${basicConfig}`], { scheme: 'http' });
  const tlsConfig = writeWebConfig(join(workdir.path, 'tls.yml'), { pki });
  mtls = await startPushgateway([`--web.config.file=${tlsConfig}`], { scheme: 'https' });
});

afterAll(async () => {
  await basic?.stop();
  await mtls?.stop();
  workdir.remove();
});

const cli = (args: string[], env: Record<string, string>) =>
  deployctl(args, { env: { DEPLOYCTL_STATE_DIR: join(workdir.path, 'state'), ...env }, cwd: workdir.path });

describe('basic auth on the real gateway', () => {
  const auth = `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}`;

  it('records with the user and password from the environment, and never prints the password', async () => {
    const env = {
      DEPLOYCTL_PUSHGATEWAY_URL: basic.url,
      DEPLOYCTL_PUSHGATEWAY_USERNAME: 'alice',
      DEPLOYCTL_PUSHGATEWAY_PASSWORD: PASSWORD,
    };
    const recorded = await cli(['record', '-s', 'auth-env', '-e', 'prod', '--status', 'success', '--verbose'], env);
    expect(recorded.exitCode).toBe(0);
    const dry = await cli(
      ['record', '-s', 'auth-env', '-e', 'prod', '--status', 'success', '--dry-run', '--verbose', '--json'],
      env,
    );
    const text = await fetchText(`${basic.url}/metrics`, { headers: { authorization: auth } });
    expect(text).toMatch(
      /deployctl_deployments_total\{environment="prod",instance="",job="deployctl",service="auth-env",status="success"\} 1/,
    );
    expect(outputs(recorded, dry)).not.toContain(PASSWORD);
  });

  it('records with credentials in the URL and shows the URL without them', async () => {
    const url = basic.url.replace('http://', `http://alice:${encodeURIComponent(PASSWORD)}@`);
    const recorded = await cli(['record', '-s', 'auth-url', '-e', 'prod', '--status', 'success', '--verbose'], {
      DEPLOYCTL_PUSHGATEWAY_URL: url,
    });
    expect(recorded.exitCode).toBe(0);
    expect(recorded.stderr).toContain(`GET ${basic.url}/api/v1/metrics → 200`);
    expect(outputs(recorded)).not.toContain(PASSWORD);
    expect(outputs(recorded)).not.toContain(encodeURIComponent(PASSWORD));
  });

  it('keeps the record on a 401, says to check the credentials, and leaks neither password nor token', async () => {
    const stateDir = join(workdir.path, 'wrong');
    const wrongPassword = await cli(['record', '-s', 'auth-bad', '-e', 'prod', '--status', 'success', '--verbose'], {
      DEPLOYCTL_PUSHGATEWAY_URL: basic.url.replace('http://', 'http://alice:wrong-s3cret@'),
      DEPLOYCTL_STATE_DIR: stateDir,
    });
    const wrongToken = await cli(
      ['record', '-s', 'auth-bad', '-e', 'prod', '--status', 'failure', '--verbose', '--strict'],
      {
        DEPLOYCTL_PUSHGATEWAY_URL: basic.url,
        DEPLOYCTL_PUSHGATEWAY_TOKEN: TOKEN,
        DEPLOYCTL_STATE_DIR: stateDir,
      },
    );
    expect(wrongPassword.exitCode).toBe(0);
    expect(wrongToken.exitCode).toBe(1);
    expect(wrongPassword.stderr).toContain('HTTP 401');
    expect(wrongPassword.stderr).toContain('check the gateway credentials');
    const flush = await cli(['flush', '--verbose'], {
      DEPLOYCTL_PUSHGATEWAY_URL: basic.url,
      DEPLOYCTL_PUSHGATEWAY_USERNAME: 'alice',
      DEPLOYCTL_PUSHGATEWAY_PASSWORD: PASSWORD,
      DEPLOYCTL_STATE_DIR: stateDir,
    });
    expect(flush.exitCode).toBe(0);
    expect(flush.stdout).toContain('sent 2 kept record(s)');
    const kept = readdirSync(stateDir, { recursive: true }).map(String);
    const all = outputs(wrongPassword, wrongToken, flush) + kept.join('\n');
    for (const secret of ['wrong-s3cret', TOKEN, PASSWORD]) expect(all).not.toContain(secret);
  });
});

describe('TLS with a client certificate on the real gateway', () => {
  it('records with --ca-file, --cert-file and --key-file', async () => {
    const result = await cli(['record', '-s', 'tls', '-e', 'prod', '--status', 'success', ...clientTlsFlags(pki)], {
      DEPLOYCTL_PUSHGATEWAY_URL: mtls.url,
    });
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('recorded success of tls in prod');
  });

  it('takes the TLS files from the environment and --insecure skips verification', async () => {
    const result = await cli(['record', '-s', 'tls', '-e', 'prod', '--status', 'success', '--insecure'], {
      DEPLOYCTL_PUSHGATEWAY_URL: mtls.url,
      DEPLOYCTL_CERT_FILE: pki.clientCert,
      DEPLOYCTL_KEY_FILE: pki.clientKey,
    });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('deployments now: success 2');
  });

  it('explains an untrusted certificate and keeps the record', async () => {
    const result = await cli(
      ['record', '-s', 'tls', '-e', 'prod', '--status', 'success', ...clientTlsFlags(pki, { withCa: false })],
      {
        DEPLOYCTL_PUSHGATEWAY_URL: mtls.url,
        DEPLOYCTL_STATE_DIR: join(workdir.path, 'untrusted'),
      },
    );
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|unable to verify/i);
    expect(result.stderr).toContain('--ca-file');
  });

  it('refuses a certificate without its key (exit 2); a missing CA file is a warning (exit 2 under --strict)', async () => {
    const noKey = await cli(
      ['record', '-s', 'tls', '-e', 'prod', '--status', 'success', '--cert-file', pki.clientCert],
      { DEPLOYCTL_PUSHGATEWAY_URL: mtls.url },
    );
    expect(noKey.exitCode).toBe(2);
    expect(noKey.stderr).toContain('needs both --cert-file and --key-file');
    const missing = await cli(
      ['record', '-s', 'tls', '-e', 'prod', '--status', 'success', '--ca-file', '/nonexistent/ca.pem'],
      { DEPLOYCTL_PUSHGATEWAY_URL: mtls.url },
    );
    expect(missing.exitCode).toBe(0);
    expect(missing.stderr).toContain('warning: not recorded: --ca-file: cannot read /nonexistent/ca.pem: ENOENT');
    const strict = await cli(
      ['record', '-s', 'tls', '-e', 'prod', '--status', 'success', '--strict', '--ca-file', '/nonexistent/ca.pem'],
      { DEPLOYCTL_PUSHGATEWAY_URL: mtls.url },
    );
    expect(strict.exitCode).toBe(2);
    expect(readFileSync(pki.caCert, 'utf8')).toContain('BEGIN CERTIFICATE');
  });
});
