import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployctl } from '../helpers/cli.js';
import { tempDir } from '../helpers/pushgateway.js';
import { clientTlsFlags, makePki, type TestPki, writeWebConfig } from '../helpers/tls.js';
import { type RunningReceiver, startPrometheusReceiver } from '../helpers/victoria-metrics.js';

const workdir = tempDir();
let pki: TestPki;
let receiver: RunningReceiver;

beforeAll(async () => {
  pki = makePki(workdir.path);
  const webConfig = writeWebConfig(join(workdir.path, 'web.yml'), { pki, users: { alice: 'wonder land' } });
  receiver = await startPrometheusReceiver(join(workdir.path, 'prometheus'), { webConfigFile: webConfig });
}, 60_000);

afterAll(async () => {
  await receiver?.stop();
  workdir.remove();
});

describe('remote-write with mutual TLS and basic auth (Prometheus --web.config.file)', () => {
  const writeUrl = (user = 'alice', password = 'wonder%20land') =>
    `https://${user}:${password}@127.0.0.1:${receiver.port}/api/v1/write`;
  const env = (machine: string, url = writeUrl()) => ({
    DEPLOYCTL_REMOTE_WRITE_URL: url,
    DEPLOYCTL_STATE_DIR: join(workdir.path, machine),
  });
  const kept = (machine: string) =>
    readdirSync(join(workdir.path, machine, 'outbox')).filter((f) => f.endsWith('.json'));

  it("writes and reads back through TLS with a client certificate and the URL's credentials, which are never printed", async () => {
    const now = Math.floor(Date.now() / 1000);
    const recorded = await deployctl(
      [
        'record',
        '-s',
        'tls',
        '-e',
        'prod',
        '--status',
        'success',
        '--commit',
        't1',
        '--finished-at',
        String(now - 60),
        '-v',
        ...clientTlsFlags(pki),
      ],
      { env: env('ok') },
    );
    expect(recorded.exitCode, recorded.stderr).toBe(0);
    expect(recorded.stdout).toContain('recorded success of tls in prod');
    expect(recorded.stdout + recorded.stderr).not.toContain('wonder');

    const status = await deployctl(['status', '-s', 'tls', '-e', 'prod', '--json', ...clientTlsFlags(pki)], {
      env: env('ok'),
    });
    expect(status.exitCode, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject([
      { service: 'tls', status: 'success', commit: 't1', finishedAt: now - 60, deployments: { success: 1 } },
    ]);
  });

  it('does not retry a certificate problem, and keeps the record with a hint', async () => {
    const result = await deployctl(
      [
        'record',
        '-s',
        'tls',
        '-e',
        'prod',
        '--status',
        'success',
        '--commit',
        't2',
        ...clientTlsFlags(pki, { withCa: false }),
      ],
      { env: env('no-ca') },
    );
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toMatch(
      /could not GET https:\/\/127\.0\.0\.1:\d+\/api\/v1\/query: .*(CERT|certificate|SELF_SIGNED)/i,
    );
    expect(result.stderr).toContain('a TLS problem');
    expect(result.stderr).not.toMatch(/attempts in/);
    expect(kept('no-ca')).toHaveLength(1);
  });

  it('takes a wrong password as permanent (401, not retried) and says to check the credentials', async () => {
    const result = await deployctl(
      ['record', '-s', 'tls', '-e', 'prod', '--status', 'success', '--commit', 't3', ...clientTlsFlags(pki)],
      { env: env('wrong', writeUrl('alice', 'nope')) },
    );
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain('HTTP 401');
    expect(result.stderr).not.toMatch(/attempts in/);
    expect(result.stderr).not.toContain('nope');
    expect(kept('wrong')).toHaveLength(1);
  });
});
