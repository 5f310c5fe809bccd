import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BIN, deployctl, scrape } from '../helpers/cli.js';
import { select, value } from '../helpers/exposition.js';
import { freePort, startPushgateway, useGatewayAndWorkdir } from '../helpers/pushgateway.js';

const context = useGatewayAndWorkdir();
const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');

/** The first sh block under "### In a shell deploy script", exactly as the README shows it. */
const readmeScript = (() => {
  const section = readme.slice(readme.indexOf('### In a shell deploy script'));
  const match = /```sh\n([\s\S]*?)```/.exec(section);
  if (!match) throw new Error('no shell example in the README');
  return match[1]!;
})();

function executable(path: string, text: string): void {
  writeFileSync(path, text);
  chmodSync(path, 0o755);
}

/**
 * Runs the README's script for `service`, with make, ./migrate.sh and kubectl as small scripts
 * that exit as told, and deployctl on PATH as the built binary.
 */
async function runScript(
  service: string,
  {
    migrateExit = 0,
    buildSeconds = 0,
    edit = (s: string) => s,
    signalAfterMs,
    env = {},
  }: {
    migrateExit?: number;
    buildSeconds?: number;
    edit?: (script: string) => string;
    signalAfterMs?: number;
    env?: Record<string, string>;
  } = {},
): Promise<{ exitCode: number | null; stderr: string }> {
  const dir = join(context.workdir.path, service);
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  executable(join(bin, 'deployctl'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
  executable(join(bin, 'make'), `#!/bin/sh\nsleep ${buildSeconds}\necho built "$@" >> "${dir}/ran"\n`);
  executable(join(bin, 'kubectl'), `#!/bin/sh\necho rolled out >> "${dir}/ran"\n`);
  executable(join(dir, 'migrate.sh'), `#!/bin/sh\necho migrated >> "${dir}/ran"\nexit ${migrateExit}\n`);
  executable(
    join(dir, 'deploy.sh'),
    edit(readmeScript.replace('DEPLOYCTL_SERVICE=checkout/api', `DEPLOYCTL_SERVICE=${service}`)),
  );
  writeFileSync(join(dir, 'ran'), '');

  const child = spawn('sh', ['./deploy.sh'], {
    cwd: dir,
    env: {
      PATH: `${bin}:${process.env.PATH}`,
      HOME: dir,
      NO_COLOR: '1',
      VERSION: '1.2.3',
      DEPLOYCTL_PUSHGATEWAY_URL: context.gateway.url,
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  if (signalAfterMs !== undefined) setTimeout(() => child.kill('SIGTERM'), signalAfterMs);
  const exitCode = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { exitCode, stderr };
}

async function totals(service: string, gatewayUrl = context.gateway.url): Promise<Record<string, number>> {
  const samples = await scrape(gatewayUrl);
  return Object.fromEntries(
    select(samples, 'deployctl_deployments_total', { service }).map((s) => [s.labels.status, s.value]),
  );
}

describe("the README's shell deploy script", () => {
  it('uses a trap', () => {
    expect(readmeScript).toContain('trap ');
  });

  it('records success when every step succeeds', async () => {
    const result = await runScript('sh-ok');
    expect(result.exitCode).toBe(0);
    expect(await totals('sh-ok')).toEqual({ success: 1, failure: 0, cancelled: 0 });
    const samples = await scrape(context.gateway.url);
    expect(value(samples, 'deployctl_deployment_in_progress', { service: 'sh-ok' })).toBe(0);
  });

  it('records failure when the migrate step fails, and exits with its code', async () => {
    const result = await runScript('sh-failed', { migrateExit: 3 });
    expect(result.exitCode).toBe(3);
    expect(await totals('sh-failed')).toEqual({ success: 0, failure: 1, cancelled: 0 });
    const samples = await scrape(context.gateway.url);
    expect(
      value(samples, 'deployctl_step_duration_seconds_count', {
        service: 'sh-failed',
        step: 'migrate',
        status: 'failure',
      }),
    ).toBe(1);
    expect(select(samples, 'deployctl_step_duration_seconds_count', { service: 'sh-failed', step: 'rollout' })).toEqual(
      [],
    );
    expect(value(samples, 'deployctl_deployment_in_progress', { service: 'sh-failed' })).toBe(0);
  });

  it('records failure from the failed step even without set -e, through finish without --status', async () => {
    const result = await runScript('sh-no-e', { migrateExit: 1, edit: (s) => s.replace('set -eu\n', 'set -u\n') });
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain('deployctl: recorded step "migrate" (failure) of sh-no-e in production');
    expect(readFileSync(join(context.workdir.path, 'sh-no-e', 'ran'), 'utf8')).toBe(
      'built build\nmigrated\nrolled out\n',
    );
    expect(await totals('sh-no-e')).toEqual({ success: 0, failure: 1, cancelled: 0 });
  });

  it('records cancelled when the script is terminated', async () => {
    const result = await runScript('sh-term', { buildSeconds: 2, signalAfterMs: 800 });
    expect(result.exitCode).toBe(130);
    expect(await totals('sh-term')).toEqual({ success: 0, failure: 0, cancelled: 1 });
  });
});

describe('finish without --status', () => {
  it('says what it inferred, and asks for --status when nothing was started on this machine', async () => {
    const env = { DEPLOYCTL_PUSHGATEWAY_URL: context.gateway.url, DEPLOYCTL_SERVICE: 'infer', DEPLOYCTL_ENV: 'prod' };
    const cwd = context.workdir.path;
    expect((await deployctl(['start'], { env, cwd })).exitCode).toBe(0);
    expect((await deployctl(['step', 'smoke', '--', 'sh', '-c', 'exit 4'], { env, cwd })).exitCode).toBe(4);
    expect((await deployctl(['step', 'retry', '--', 'true'], { env, cwd })).exitCode).toBe(0);
    const finished = await deployctl(['finish'], { env, cwd });
    expect(finished.exitCode).toBe(0);
    expect(finished.stdout.split('\n')[0]).toBe('no --status given: failure, as step "smoke" failed');

    const again = await deployctl(['finish'], { env, cwd });
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toBe(
      'deployctl: --status is required here: no deployment was started on this machine, so its steps cannot tell how it ended\n' +
        '  give --status success, failure or cancelled, or run deployctl start first on this machine\n',
    );
    expect(await totals('infer')).toEqual({ success: 0, failure: 1, cancelled: 0 });
  });

  it('against a gateway that refuses connections costs about one --timeout, not five; flush then delivers all once', async () => {
    const port = await freePort(); // nothing listens there: every connection is refused at once
    const down = `http://127.0.0.1:${port}`;
    const started = Date.now();
    const result = await runScript('sh-refused', { env: { DEPLOYCTL_PUSHGATEWAY_URL: down, DEPLOYCTL_TIMEOUT: '5' } });
    const elapsed = Date.now() - started;
    expect(result.exitCode, result.stderr).toBe(0);
    // Five commands; the first spends its --timeout on retries, the next ones try once (an outcome of the design).
    expect(elapsed).toBeLessThan(2 * 5_000);
    const stateDir = join(context.workdir.path, 'sh-refused', '.local', 'state', 'deployctl');
    const kept = readdirSync(join(stateDir, 'outbox')).filter((f) => f.endsWith('.json'));
    expect(kept).toHaveLength(5); // start, three steps, finish: nothing lost

    const gateway = await startPushgateway([], { port });
    try {
      const env = { DEPLOYCTL_PUSHGATEWAY_URL: down, DEPLOYCTL_STATE_DIR: stateDir };
      for (let i = 0; i < 2; i++) {
        const flushed = await deployctl(['flush'], { env });
        expect(flushed.exitCode, flushed.stderr).toBe(0);
      }
      expect(await totals('sh-refused', gateway.url)).toEqual({ success: 1, failure: 0, cancelled: 0 });
      const samples = await scrape(gateway.url);
      for (const step of ['build', 'migrate', 'rollout']) {
        expect(
          value(samples, 'deployctl_step_duration_seconds_count', { service: 'sh-refused', step, status: 'success' }),
        ).toBe(1);
      }
      expect(value(samples, 'deployctl_deployment_in_progress', { service: 'sh-refused' })).toBe(0);
      expect(readdirSync(join(stateDir, 'outbox')).filter((f) => f.endsWith('.json'))).toEqual([]);
      // The gateway answers again: the next command gets its whole budget, and it is delivered at once.
      const next = await deployctl(['record', '-s', 'sh-refused', '-e', 'production', '--status', 'failure'], { env });
      expect(next.exitCode, next.stderr).toBe(0);
      expect(await totals('sh-refused', gateway.url)).toEqual({ success: 1, failure: 1, cancelled: 0 });
    } finally {
      await gateway.stop();
    }
  });
});
