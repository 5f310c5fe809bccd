import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deployctl, deployments, gatewayEnv, gatewaySample, keptRecords, startDeployctl } from '../helpers/cli.js';
import { startDelayProxy } from '../helpers/delay-proxy.js';
import { useGatewayAndWorkdir } from '../helpers/pushgateway.js';
import { deployctlLine, useTmux } from '../helpers/tmux.js';
import { sleep, until } from '../helpers/wait.js';

/**
 * Signals under the golden rule: Ctrl-C at a real terminal reaches the command once, a signal
 * deployctl passed on makes it exit 128+N and records a cancelled deployment whatever the
 * command did then, and SIGTERM during the final push keeps the record and exits promptly.
 */
const stack = useGatewayAndWorkdir();
const { workdir } = stack;
const counted = (service: string, status: string) => deployments(stack.gateway.url, service, status);
const inProgress = (service: string) =>
  gatewaySample(stack.gateway.url, 'deployctl_deployment_in_progress', { service });

/**
 * A deploy command that counts each of `signal` it receives, and once the first came, waits a
 * moment for any second one, writes the count and exits 0 (as a deploy that cleans up and ends
 * well would). It says "ready" (and touches `<count>.ready`) once its handler is in place.
 */
function countingScript(signal: string, countFile: string): string {
  const file = join(workdir.path, `count-${randomUUID().slice(0, 8)}.cjs`);
  writeFileSync(
    file,
    `let n = 0;
process.on(${JSON.stringify(signal)}, () => {
  n += 1;
  if (n === 1) setTimeout(() => { require('fs').writeFileSync(${JSON.stringify(countFile)}, String(n)); process.exit(0); }, 700);
});
require('fs').writeFileSync(${JSON.stringify(`${countFile}.ready`)}, '');
console.log('ready');
setTimeout(() => process.exit(9), 15000);
`,
  );
  return file;
}

const tmux = useTmux();

describe('Ctrl-C at a terminal', () => {
  it('reaches the wrapped command exactly once; deployctl exits 130 and records one cancelled deployment', async () => {
    const countFile = join(workdir.path, 'ctrl-c.count');
    const script = countingScript('SIGINT', countFile);
    const vars = {
      PATH: process.env.PATH ?? '',
      HOME: workdir.path,
      TERM: 'xterm-256color',
      LANG: 'C.UTF-8',
      DEPLOYCTL_PUSHGATEWAY_URL: stack.gateway.url,
      DEPLOYCTL_STATE_DIR: join(workdir.path, 'tty'),
    };
    const session = `s${randomUUID().slice(0, 8)}`;
    const line = deployctlLine(vars, ['run', '-s', 'ctrl-c', '-e', 'prod', '--', process.execPath, script]);
    tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '30', line);
    try {
      expect(await until(() => existsSync(`${countFile}.ready`), 10_000)).toBe(true);
      tmux('send-keys', '-t', session, 'C-c');
      let screen = '';
      await until(() => /\[exit \d+\]/.test((screen = tmux('capture-pane', '-p', '-t', session))), 10_000);
      expect(screen).toContain('[exit 130]');
    } finally {
      tmux('kill-session', '-t', session);
    }
    expect(readFileSync(countFile, 'utf8')).toBe('1');
    expect(await counted('ctrl-c', 'cancelled')).toBe(1);
    expect(await counted('ctrl-c', 'success')).toBe(0);
    expect(await inProgress('ctrl-c')).toBe(0);
  });
});

describe('a signal sent to deployctl itself', () => {
  it.each(['SIGTERM', 'SIGINT', 'SIGHUP'] as const)(
    '%s: the command gets it once, deployctl exits 128+N and records cancelled though the command exited 0',
    async (signal) => {
      const service = `sig-${signal.toLowerCase()}`;
      const countFile = join(workdir.path, `${service}.count`);
      const script = countingScript(signal, countFile);
      const run = startDeployctl(['run', '-s', service, '-e', 'prod', '--', process.execPath, script], {
        env: gatewayEnv(stack.gateway.url, join(workdir.path, 'sig')),
      });
      expect(await until(() => existsSync(`${countFile}.ready`), 10_000)).toBe(true);
      run.child.kill(signal);
      const code = await run.exited;
      expect({ code, stderr: run.stderr() }).toEqual({
        code: 128 + constants.signals[signal],
        stderr: expect.stringContaining(`recorded cancelled of ${service} in prod`),
      });
      expect(readFileSync(countFile, 'utf8')).toBe('1');
      expect(await counted(service, 'cancelled')).toBe(1);
      expect(await counted(service, 'success')).toBe(0);
      expect(await inProgress(service)).toBe(0);
    },
  );
});

describe('SIGTERM while deployctl pushes after the command ended', () => {
  it('exits promptly with the command’s code, keeps the record, and a later flush lands it once', async () => {
    let slow = false;
    const proxy = await startDelayProxy(stack.gateway.url, { before: () => (slow ? 4_000 : 0), after: () => 0 });
    const stateDir = join(workdir.path, 'term-push');
    const ended = join(workdir.path, 'term-push.ended');
    const env = gatewayEnv(proxy.url, stateDir);
    try {
      const run = startDeployctl(
        ['run', '-s', 'term-push', '-e', 'prod', '--', 'sh', '-c', `sleep 0.5; touch ${ended}; exit 5`],
        { env },
      );
      expect(await until(() => existsSync(ended), 10_000)).toBe(true);
      slow = true;
      expect(await until(() => keptRecords(stateDir).length > 0, 5_000)).toBe(true);
      // The record is on disk and its push is held up by the slow gateway.
      expect(await until(() => proxy.pending() > 0, 5_000)).toBe(true);
      const sent = Date.now();
      run.child.kill('SIGTERM');
      const code = await run.exited;
      const took = Date.now() - sent;
      expect(code).toBe(5);
      expect(took).toBeLessThan(1_000);
      expect(run.stderr()).toContain('interrupted while recording; the record is kept');
      expect(readdirSync(join(stateDir, 'outbox')).filter((name) => name.endsWith('.json'))).toHaveLength(1);
      expect(await counted('term-push', 'failure')).toBe(0);
      slow = false;
      // The held request, if it is ever forwarded, has landed once the proxy is done with it.
      expect(await until(() => proxy.pending() === 0, 10_000)).toBe(true);
      expect(await counted('term-push', 'failure')).toBe(0);

      const flush = await deployctl(['flush'], { env, cwd: workdir.path });
      expect(flush.exitCode).toBe(0);
      expect(flush.stdout).toContain('sent 1 kept record(s); 0 still kept');
      const again = await deployctl(['flush'], { env, cwd: workdir.path });
      expect(again.stdout).toContain('nothing kept');
      expect(await counted('term-push', 'failure')).toBe(1);
      expect(await counted('term-push', 'cancelled')).toBe(0);
    } finally {
      await proxy.close();
    }
  }, 30_000);
});

describe('SIGTERM after the command ended, while the in-progress mark is still on its way', () => {
  it('keeps the record, exits promptly with the command’s code, and a later flush lands it once', async () => {
    let slow = true;
    const proxy = await startDelayProxy(stack.gateway.url, { before: () => (slow ? 5_000 : 0), after: () => 0 });
    const stateDir = join(workdir.path, 'term-mark');
    const ended = join(workdir.path, 'term-mark.ended');
    const env = gatewayEnv(proxy.url, stateDir);
    try {
      const run = startDeployctl(['run', '-s', 'term-mark', '-e', 'prod', '--', 'sh', '-c', `touch ${ended}; exit 5`], {
        env,
      });
      expect(await until(() => existsSync(ended), 10_000)).toBe(true);
      // The command has ended; deployctl waits for its request to the gateway (held 5 s), for 400 ms at least.
      const endedAt = Date.now();
      expect(await until(() => proxy.requests.length > 0, 10_000)).toBe(true);
      await sleep(endedAt + 400 - Date.now());
      const sent = Date.now();
      run.child.kill('SIGTERM');
      const code = await run.exited;
      expect(code).toBe(5);
      expect(Date.now() - sent).toBeLessThan(1_000);
      expect(run.stderr()).toContain('interrupted while recording; the record is kept');
      expect(readdirSync(join(stateDir, 'outbox')).filter((name) => name.endsWith('.json'))).toHaveLength(1);
      slow = false;
      const flush = await deployctl(['flush'], { env, cwd: workdir.path });
      expect(flush.exitCode).toBe(0);
      expect(flush.stdout).toContain('sent 1 kept record(s); 0 still kept');
      expect(await counted('term-mark', 'failure')).toBe(1);
      expect(await counted('term-mark', 'cancelled')).toBe(0);
    } finally {
      await proxy.close();
    }
  }, 20_000);
});

describe('SIGTERM during the final push with a read-only state directory', () => {
  it.skipIf(process.getuid?.() !== 0)(
    'exits promptly with the command’s code and does not claim the record was kept',
    async () => {
      const stateRoot = join(workdir.path, 'ro-term');
      mkdirSync(stateRoot, { recursive: true });
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', stateRoot]);
      const proxy = await startDelayProxy(stack.gateway.url, { before: () => 5_000, after: () => 0 });
      const ended = join(workdir.path, 'ro-term.ended');
      try {
        const env = gatewayEnv(proxy.url, join(stateRoot, 'state'));
        const run = startDeployctl(['run', '-s', 'ro-term', '-e', 'prod', '--', 'sh', '-c', `touch ${ended}; exit 6`], {
          env,
        });
        expect(await until(() => existsSync(ended), 10_000)).toBe(true);
        // The in-progress mark (its 2 s budget) and then the final push are both held up by the gateway.
        await until(() => proxy.requests.length >= 2, 10_000);
        expect(proxy.requests.length).toBeGreaterThanOrEqual(2);
        const sent = Date.now();
        run.child.kill('SIGTERM');
        const code = await run.exited;
        expect(code).toBe(6);
        expect(Date.now() - sent).toBeLessThan(1_000);
        expect(run.stderr()).toContain('the record could not be kept on disk');
        expect(run.stderr()).not.toContain('the record is kept');
        expect(await counted('ro-term', 'failure')).toBe(0);
      } finally {
        await proxy.close();
        execFileSync('umount', [stateRoot]);
      }
    },
    20_000,
  );
});
