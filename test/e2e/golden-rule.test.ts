import { spawn } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lockAddress } from '../../src/recorder/lock.js';
import { groupFileName } from '../../src/recorder/state-dir.js';
import { deployctl, deployments, gatewayEnv, keptRecords, startDeployctl } from '../helpers/cli.js';
import { type DelayProxy, startDelayProxy } from '../helpers/delay-proxy.js';
import { useGatewayAndWorkdir } from '../helpers/pushgateway.js';
import { sleep, until } from '../helpers/wait.js';

/**
 * The golden rule under crashes: write-ahead with kill -9 at random points of a slowed push, and
 * the group lock with killed and live holders. Every expected count comes from this file's own
 * bookkeeping, compared with what the real gateway holds.
 */
const stack = useGatewayAndWorkdir();
const { workdir } = stack;
const counted = (service: string, status = 'success') => deployments(stack.gateway.url, service, status);

/** deployctl started in the background, to be killed. */
const launch = (args: string[], env: Record<string, string>) =>
  startDeployctl(args, { env: { HOME: workdir.path, ...env }, cwd: workdir.path });

describe('write-ahead under kill -9', () => {
  /** Trials wanted of each kind: killed in the middle of its push, killed before it, and with a record to lose. */
  const EACH = Number(process.env.DEPLOYCTL_KILL_EACH ?? 40);
  /** Trials go on until there are EACH of every kind, but never past these bounds. */
  const MAX_TRIALS = Number(process.env.DEPLOYCTL_KILL_MAX_TRIALS ?? 400);
  const MAX_SECONDS = Number(process.env.DEPLOYCTL_KILL_MAX_SECONDS ?? 90);
  const SLOTS = 4;

  it(
    `loses nothing and doubles nothing over kill -9 trials at random points of a slowed push (${EACH} of each kind)`,
    async () => {
      const figures = {
        trials: 0,
        killed: 0,
        killedMidPush: 0,
        killedBeforePush: 0,
        durableOrSent: 0,
        notStarted: 0,
        lost: 0,
        doubled: 0,
        writeBeforeWriteAhead: 0,
        flushFailed: 0,
      };
      const began = Date.now();
      const deadline = began + MAX_SECONDS * 1_000;
      let started = 0;
      const wanted = () => ({
        midPush: figures.killedMidPush < EACH || figures.durableOrSent < EACH,
        beforePush: figures.killedBeforePush < EACH,
      });
      const slot = async (k: number) => {
        const service = `kill9-${k}`;
        const stateDir = join(workdir.path, `kill9-${k}`);
        let trialStart = Infinity;
        let firstSeen = true;
        let proxy: DelayProxy | undefined;
        proxy = await startDelayProxy(stack.gateway.url, {
          before: () => Math.random() * 100,
          after: () => Math.random() * 100,
          onRequest: (request) => {
            // The first write of a trial must find the record already on disk (a read of the group may go first).
            if (Date.now() >= trialStart && firstSeen && request.method !== 'GET') {
              firstSeen = false;
              if (keptRecords(stateDir).length === 0) figures.writeBeforeWriteAhead += 1;
            }
          },
        });
        const env = gatewayEnv(proxy.url, stateDir);
        // Undisturbed runs tell how long a whole record takes here and how soon its first request
        // reaches the gateway (the quickest of three, as the first pays for a cold start).
        let span = Infinity;
        let reach = Infinity;
        for (let i = 0; i < 3; i++) {
          const calibrateStart = Date.now();
          const requestsBefore = proxy.requests.length;
          const first = await deployctl(['record', '-s', service, '-e', 'prod', '--status', 'success'], {
            env,
            cwd: workdir.path,
          });
          expect(first.exitCode).toBe(0);
          span = Math.min(span, (Date.now() - calibrateStart) * 1.1);
          reach = Math.min(reach, (proxy.requests[requestsBefore]?.at ?? Date.now()) - calibrateStart);
        }
        let expected = 3;
        try {
          while ((wanted().midPush || wanted().beforePush) && started < MAX_TRIALS && Date.now() < deadline) {
            started += 1;
            const before = await counted(service);
            expect(before).toBe(expected);
            firstSeen = true;
            trialStart = Date.now();
            const requestsBefore = proxy.requests.length;
            const run = launch(['record', '-s', service, '-e', 'prod', '--status', 'success', '--timeout', '5'], env);
            // Kill points are spread over a whole record while both kinds are wanted; once one kind
            // has enough, over the part where the other falls: before the first request, or after it.
            const want = wanted();
            if (want.midPush && want.beforePush) {
              await Promise.race([sleep(Math.random() * span), run.exited]);
            } else if (want.beforePush) {
              await Promise.race([sleep(Math.random() * reach), run.exited]);
            } else {
              await Promise.race([until(() => proxy!.requests.length > requestsBefore, 10_000), run.exited]);
              await Promise.race([sleep(Math.random() * Math.max(span - reach, 100)), run.exited]);
            }
            let killedNow = false;
            if (run.child.exitCode === null && run.child.signalCode === null) {
              run.child.kill('SIGKILL');
              figures.killed += 1;
              killedNow = true;
            }
            await run.exited;
            trialStart = Infinity;
            // A write is what carries the record; a read of the group (which may leave while the record is still being made) does not.
            const madeRequest = proxy.requests.slice(requestsBefore).some((request) => request.method !== 'GET');
            if (killedNow && proxy.requests.length > requestsBefore) figures.killedMidPush += 1;
            if (killedNow && proxy.requests.length === requestsBefore) figures.killedBeforePush += 1;
            const durable = keptRecords(stateDir).length > 0;
            // Let a request the dead process had already handed over reach the gateway.
            await until(() => proxy!.inFlight() === 0, 2_000);
            const flush = await deployctl(['flush'], { env, cwd: workdir.path });
            if (flush.exitCode !== 0) figures.flushFailed += 1;
            const after = await counted(service);
            figures.trials += 1;
            if (madeRequest || durable) {
              figures.durableOrSent += 1;
              expected += 1;
            } else {
              figures.notStarted += 1;
            }
            if (after < expected) figures.lost += expected - after;
            if (after > expected) figures.doubled += after - expected;
            expected = after; // each trial judged on its own
            expect(keptRecords(stateDir)).toEqual([]);
          }
        } finally {
          await proxy.close();
        }
      };
      await Promise.all(Array.from({ length: SLOTS }, (_, k) => slot(k)));
      const seconds = Math.round((Date.now() - began) / 1_000);
      console.log(`kill -9 trials: ${JSON.stringify(figures)} in ${seconds} s`);
      expect(figures.trials).toBe(started);
      expect(figures.lost).toBe(0);
      expect(figures.doubled).toBe(0);
      expect(figures.writeBeforeWriteAhead).toBe(0);
      expect(figures.flushFailed).toBe(0);
      // Enough kill points of each kind: the guarantee was put to the test where it can break.
      const tooSlow = `this machine was too slow to get ${EACH} trials of each kind within ${MAX_TRIALS} trials and ${MAX_SECONDS} s (${figures.trials} trials in ${seconds} s)`;
      expect(figures.killedMidPush, tooSlow).toBeGreaterThanOrEqual(EACH);
      expect(figures.killedBeforePush, tooSlow).toBeGreaterThanOrEqual(EACH);
      expect(figures.durableOrSent, tooSlow).toBeGreaterThanOrEqual(EACH);
    },
    (MAX_SECONDS + 60) * 1_000,
  );
});

/** A process of this test's own that holds a group's lock: listens on the same abstract name. */
async function holdLock(address: string, ms: number): Promise<{ released: Promise<void>; pid: number }> {
  mkdirSync(dirname(address), { recursive: true, mode: 0o700 });
  const holder = spawn(
    process.execPath,
    [
      '-e',
      `const s=require('net').createServer();s.listen({path:${JSON.stringify(address)},exclusive:true},()=>{process.stdout.write('held\\n');setTimeout(()=>process.exit(0),${ms})});s.on('error',e=>{process.stdout.write('busy '+e.code+'\\n');process.exit(1)})`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const said = await new Promise<string>((resolve) =>
    holder.stdout!.once('data', (d: Buffer) => resolve(d.toString())),
  );
  if (!said.startsWith('held')) throw new Error(`the test could not hold the lock: ${said}`);
  return { released: new Promise((resolve) => holder.once('exit', () => resolve())), pid: holder.pid! };
}

/** Whether a live process listens on the lock's socket file (connecting to a dead holder's is refused). */
const lockListening = (address: string) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(address);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

describe('the group lock', () => {
  const grouping = (service: string) => ({ job: 'deployctl', service, environment: 'prod' });

  it('a holder killed with kill -9 leaves nothing behind; then concurrent records of one group lose nothing', async () => {
    const ROUNDS = Number(process.env.DEPLOYCTL_LOCK_ROUNDS ?? 3);
    const CONCURRENT = 30;
    const service = 'lock-crash';
    const stateDir = join(workdir.path, 'lock-crash');
    const address = lockAddress(stateDir, grouping(service));
    // A slow gateway keeps the killed holder inside its lock for a while.
    const proxy = await startDelayProxy(stack.gateway.url, { before: () => 300, after: () => 300 });
    const env = gatewayEnv(proxy.url, stateDir);
    let expected = 0;
    let lost = 0;
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const holder = launch(['record', '-s', service, '-e', 'prod', '--status', 'failure', '--timeout', '10'], env);
        // Killed while it holds the lock with its record on disk (the lock may be taken first, while the record is written).
        await until(async () => (await lockListening(address)) && keptRecords(stateDir).length > round, 5_000);
        expect(await lockListening(address)).toBe(true);
        expect(keptRecords(stateDir)).toHaveLength(round + 1);
        holder.child.kill('SIGKILL');
        await holder.exited;
        expect(await lockListening(address)).toBe(false);
        // Nothing under the state directory but the killed process's kept record and its dead lock socket.
        expect(readdirSync(stateDir).sort()).toEqual(['locks', 'outbox']);
        await until(() => proxy.inFlight() === 0, 2_000);

        const results = await Promise.all(
          Array.from({ length: CONCURRENT }, () =>
            deployctl(['record', '-s', service, '-e', 'prod', '--status', 'success', '--timeout', '30'], {
              env: gatewayEnv(stack.gateway.url, stateDir),
              cwd: workdir.path,
              timeout: 60_000,
            }),
          ),
        );
        expect(results.map((r) => r.exitCode)).toEqual(Array(CONCURRENT).fill(0));
        expected += CONCURRENT;
        const got = await counted(service);
        lost += expected - got;
        expected = got;
      }
    } finally {
      await proxy.close();
    }
    console.log(`lock after kill -9: lost ${lost} of ${ROUNDS * CONCURRENT}`);
    expect(lost).toBe(0);
    // The killed holders' records were meant for the proxy's URL,
    // which is gone now: they stay kept, none was sent to the gateway the others used.
    const flush = await deployctl(['flush', '--timeout', '1'], {
      env: gatewayEnv(stack.gateway.url, stateDir),
      cwd: workdir.path,
    });
    expect(flush.exitCode).toBe(1);
    expect(keptRecords(stateDir)).toHaveLength(ROUNDS);
    expect(await counted(service, 'failure')).toBe(0);
  }, 60_000);

  it('a directory, a dangling symlink or an empty file where a lock file might be changes nothing', async () => {
    const stateDir = join(workdir.path, 'lock-odd');
    const env = gatewayEnv(stack.gateway.url, stateDir);
    const locks = join(stateDir, 'locks');
    mkdirSync(locks, { recursive: true });
    const name = (service: string) => groupFileName(grouping(service));
    mkdirSync(join(locks, name('odd-dir')));
    mkdirSync(join(locks, `${name('odd-dir')}.lock`));
    mkdirSync(join(locks, `${name('odd-dir')}.sock`));
    symlinkSync('/nonexistent/target', join(locks, name('odd-link')));
    symlinkSync('/nonexistent/target', join(locks, `${name('odd-link')}.lock`));
    symlinkSync('/nonexistent/target', join(locks, `${name('odd-link')}.sock`));
    writeFileSync(join(locks, name('odd-empty')), '');
    writeFileSync(join(locks, `${name('odd-empty')}.lock`), '');
    writeFileSync(join(locks, `${name('odd-empty')}.sock`), '');
    for (const service of ['odd-dir', 'odd-link', 'odd-empty']) {
      const started = Date.now();
      const results = await Promise.all(
        [0, 1, 2].map(() =>
          deployctl(['record', '-s', service, '-e', 'prod', '--status', 'success', '--timeout', '3'], {
            env,
            cwd: workdir.path,
          }),
        ),
      );
      expect(Date.now() - started).toBeLessThan(4_000);
      expect(results.map((r) => [r.exitCode, r.stderr])).toEqual([
        [0, ''],
        [0, ''],
        [0, ''],
      ]);
      expect(await counted(service)).toBe(3);
    }
    expect(keptRecords(stateDir)).toEqual([]);
    // What was there is still there, untouched.
    expect(lstatSync(join(locks, `${name('odd-dir')}.lock`)).isDirectory()).toBe(true);
    expect(lstatSync(join(locks, `${name('odd-link')}.lock`)).isSymbolicLink()).toBe(true);
  });

  it('never breaks a live holder: records wait at most --timeout, are kept, then flushed once', async () => {
    const service = 'lock-live';
    const stateDir = join(workdir.path, 'lock-live');
    const env = gatewayEnv(stack.gateway.url, stateDir);
    const holder = await holdLock(lockAddress(stateDir, grouping(service)), 8_000);
    const timed = async () => {
      const started = Date.now();
      const result = await deployctl(
        ['record', '-s', service, '-e', 'prod', '--status', 'success', '--timeout', '1.5'],
        { env, cwd: workdir.path },
      );
      return { ...result, ms: Date.now() - started };
    };
    const results = await Promise.all([timed(), timed(), timed()]);
    for (const result of results) {
      expect(result.exitCode).toBe(0);
      expect(result.ms).toBeLessThan(1_500 + 1_000 + 500 /* node start-up */);
      // The wait it names is what was left of 1.5 s when it began (1.4 s when the start was slow);
      // that it waited out the whole budget shows in the time the command took.
      const held = /held the lock on lock-live in prod for longer than (\d\.\d)s/.exec(result.stderr);
      expect(held, result.stderr).not.toBeNull();
      expect(Number(held![1])).toBeLessThanOrEqual(1.5);
      expect(result.ms).toBeGreaterThanOrEqual(1_500);
      expect(result.stderr).toContain('It is kept in');
    }
    expect(await counted(service)).toBe(0);
    expect(keptRecords(stateDir)).toHaveLength(3);
    // Still held: a flush cannot send them either, and waits no longer than its own budget.
    const started = Date.now();
    const blocked = await deployctl(['flush', '--timeout', '1'], { env, cwd: workdir.path });
    expect(Date.now() - started).toBeLessThan(1_000 + 1_500);
    expect(blocked.exitCode).toBe(1);
    expect(await counted(service)).toBe(0);
    process.kill(holder.pid, 'SIGTERM');
    await holder.released;
    const flush = await deployctl(['flush'], { env, cwd: workdir.path });
    expect(flush.exitCode).toBe(0);
    expect(flush.stdout).toContain('sent 3 kept record(s); 0 still kept');
    expect(await counted(service)).toBe(3);
    const again = await deployctl(['flush'], { env, cwd: workdir.path });
    expect(again.stdout).toContain('nothing kept');
    expect(await counted(service)).toBe(3);
  }, 30_000);
});
