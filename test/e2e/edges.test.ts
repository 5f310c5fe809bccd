import { execFile } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { acquireGroupLock } from '../../src/recorder/lock.js';
import { BIN, cliEnv, deployctl, deployments, gatewayEnv, keptRecords, startDeployctl } from '../helpers/cli.js';
import { startDelayProxy } from '../helpers/delay-proxy.js';
import { rawControls, startHostileServer } from '../helpers/hostile-server.js';
import { useGatewayAndWorkdir } from '../helpers/pushgateway.js';
import { sleep, until } from '../helpers/wait.js';

/**
 * The golden rule at the edges: what happens around a deploy (signals after it, shared or planted
 * state, hostile servers, a damaged code cache) never changes its outcome and loses no record.
 */
const stack = useGatewayAndWorkdir();
const { workdir } = stack;

describe('a SIGTERM storm once the command has ended (issue: 8 of 20 runs exited 143)', () => {
  it('exits 0 in every one of 10 trials, and after a flush the gateway holds exactly 10 successes', async () => {
    const trials = 10;
    let slow = true;
    const proxy = await startDelayProxy(stack.gateway.url, { before: () => (slow ? 1_500 : 0), after: () => 0 });
    const stateDir = join(workdir.path, 'storm');
    const env = gatewayEnv(proxy.url, stateDir);
    const codes: (number | null)[] = [];
    try {
      for (let trial = 0; trial < trials; trial += 1) {
        const seen = proxy.requests.length;
        const run = startDeployctl(['run', '-s', 'storm', '-e', 'prod', '--', 'true'], { env });
        // `true` has ended once deployctl pushes its record (the in-progress mark waits a second).
        await until(() => proxy.requests.length > seen, 10_000, 2);
        let exited = false;
        void run.exited.then(() => (exited = true));
        for (let sent = 0; !exited && sent < 2_000; sent += 1) {
          run.child.kill('SIGTERM');
          await sleep(3);
        }
        codes.push(await run.exited);
      }
      expect(codes).toEqual(Array(trials).fill(0));
      slow = false;
      // Held pushes whose client has gone are not forwarded; wait until the proxy is done with them.
      expect(await until(() => proxy.pending() === 0, 10_000)).toBe(true);
      const flush = await deployctl(['flush'], { env });
      expect(flush.exitCode).toBe(0);
      expect(await deployments(stack.gateway.url, 'storm', 'success')).toBe(trials);
    } finally {
      await proxy.close();
    }
  }, 120_000);
});

const isRoot = process.getuid?.() === 0;

describe('one lock per state directory, whatever reaches it', () => {
  it('25 concurrent records through two paths (a symlink) of one state directory: exactly 25 on the gateway (issue: 24)', async () => {
    const real = join(workdir.path, 'shared-real');
    mkdirSync(real, { mode: 0o700 });
    const link = join(workdir.path, 'shared-link');
    symlinkSync(real, link);
    const proxy = await startDelayProxy(stack.gateway.url, { before: () => 150, after: () => 150 });
    try {
      const results = await Promise.all(
        Array.from({ length: 25 }, (_, i) =>
          deployctl(['record', '-s', 'two-paths', '-e', 'prod', '--status', 'success', '--timeout', '30'], {
            env: gatewayEnv(proxy.url, i % 2 ? real : link),
            timeout: 60_000,
          }),
        ),
      );
      expect(results.map((r) => r.exitCode)).toEqual(Array(25).fill(0));
      const flush = await deployctl(['flush'], { env: gatewayEnv(proxy.url, real) });
      expect(flush.exitCode).toBe(0);
    } finally {
      await proxy.close();
    }
    expect(await deployments(stack.gateway.url, 'two-paths', 'success')).toBe(25);
  }, 120_000);

  it('a lock held through one path makes a record through a symlink to the same directory wait (issue: two locks over one outbox)', async () => {
    const real = join(workdir.path, 'held-real');
    mkdirSync(real, { mode: 0o700 });
    const link = join(workdir.path, 'held-link');
    symlinkSync(real, link);
    const lock = await acquireGroupLock(real, { job: 'deployctl', service: 'held', environment: 'prod' }, 0);
    try {
      const result = await deployctl(['record', '-s', 'held', '-e', 'prod', '--status', 'success', '--timeout', '1'], {
        env: gatewayEnv(stack.gateway.url, link),
      });
      expect(result.exitCode).toBe(0);
      expect(result.stderr).toContain('held the lock on held in prod');
      expect(await deployments(stack.gateway.url, 'held', 'success')).toBe(0);
      expect(keptRecords(real)).toHaveLength(1);
    } finally {
      await lock.release();
    }
    expect((await deployctl(['flush'], { env: gatewayEnv(stack.gateway.url, link) })).exitCode).toBe(0);
    expect(await deployments(stack.gateway.url, 'held', 'success')).toBe(1);
  }, 30_000);

  it.skipIf(!isRoot)(
    'a lock held on the host makes a record in another network namespace wait for it',
    async () => {
      const stateDir = join(workdir.path, 'held-netns');
      mkdirSync(stateDir, { mode: 0o700 });
      const lock = await acquireGroupLock(stateDir, { job: 'deployctl', service: 'held-ns', environment: 'prod' }, 0);
      try {
        const { stderr } = await promisify(execFile)(
          'unshare',
          [
            '--net',
            process.execPath,
            BIN,
            'record',
            '-s',
            'held-ns',
            '-e',
            'prod',
            '--status',
            'success',
            '--timeout',
            '1',
          ],
          { env: cliEnv(gatewayEnv(stack.gateway.url, stateDir)), timeout: 30_000 },
        );
        expect(stderr).toContain('held the lock on held-ns in prod');
        expect(keptRecords(stateDir)).toHaveLength(1);
      } finally {
        await lock.release();
      }
    },
    30_000,
  );

  it.skipIf(!isRoot)(
    'three network namespaces sharing one state directory keep 30 records; a flush from the host delivers exactly 30 (issue: 89 of 90)',
    async () => {
      const stateDir = join(workdir.path, 'netns');
      mkdirSync(stateDir, { mode: 0o700 });
      const env = gatewayEnv(stack.gateway.url, stateDir);
      const perNamespace = 10;
      // Each namespace has only a loopback that is down: its records cannot reach the gateway and are kept.
      const script = `for i in $(seq ${perNamespace}); do "$0" "$1" record -s netns -e prod --status success --timeout 5 & done; wait`;
      const runs = await Promise.all(
        [0, 1, 2].map(() =>
          promisify(execFile)('unshare', ['--net', 'sh', '-c', script, process.execPath, BIN], {
            env: cliEnv(env),
            timeout: 60_000,
          }),
        ),
      );
      expect(runs).toHaveLength(3);
      expect(keptRecords(stateDir).length).toBeGreaterThan(0);
      const flush = await deployctl(['flush'], { env });
      expect(flush.exitCode).toBe(0);
      expect(await deployments(stack.gateway.url, 'netns', 'success')).toBe(3 * perNamespace);
    },
    120_000,
  );
});

describe('another local user’s state directory and lock (run as root with a test user)', () => {
  const user = `dctl${process.pid % 100000}`;
  const exec = promisify(execFile);

  it.skipIf(!isRoot)(
    'a planted world-writable state directory is not used: flush moves nothing into a root-only folder and delivers no forged record; a squatter cannot take root’s lock',
    async () => {
      await exec('useradd', ['-M', '-N', '-s', '/bin/sh', user]);
      const planted = mkdtempSync(join(tmpdir(), 'deployctl-planted-'));
      const rootOnly = mkdtempSync(join(tmpdir(), 'deployctl-root-only-'));
      try {
        // A genuine kept record for this gateway, made where the gateway cannot be reached.
        const source = join(workdir.path, 'forge-source');
        mkdirSync(source, { mode: 0o700 });
        await exec(
          'unshare',
          [
            '--net',
            process.execPath,
            BIN,
            'record',
            '-s',
            'forged',
            '-e',
            'prod',
            '--status',
            'success',
            '--timeout',
            '1',
          ],
          {
            env: cliEnv(gatewayEnv(stack.gateway.url, source)),
          },
        );
        expect(keptRecords(source)).toHaveLength(1);
        // The other user's world-writable state directory, holding that record, its quarantine a symlink to a root-only folder.
        chmodSync(rootOnly, 0o700);
        cpSync(join(source, 'outbox'), join(planted, 'outbox'), { recursive: true });
        rmSync(join(planted, 'outbox', 'quarantine'), { recursive: true, force: true });
        symlinkSync(rootOnly, join(planted, 'outbox', 'quarantine'));
        writeFileSync(join(planted, 'outbox', 'garbage.json'), 'not a record');
        await exec('chown', ['-hR', user, planted]);
        chmodSync(planted, 0o777);
        chmodSync(join(planted, 'outbox'), 0o777);

        const flush = await deployctl(['flush'], { env: gatewayEnv(stack.gateway.url, planted) });
        const warnings = flush.stderr.split('\n').filter((line) => line.includes('state directory not used'));
        expect(warnings).toHaveLength(1);
        expect(warnings[0]).toContain('not to this user');
        expect(readdirSync(rootOnly)).toEqual([]);
        expect(existsSync(join(planted, 'outbox', 'garbage.json'))).toBe(true);
        expect(await deployments(stack.gateway.url, 'forged', 'success')).toBe(0);

        // A record into it: goes straight out, the deploy keeps its exit code, one warning.
        const run = await deployctl(['run', '-s', 'planted-run', '-e', 'prod', '--', 'sh', '-c', 'exit 3'], {
          env: gatewayEnv(stack.gateway.url, planted),
        });
        expect(run.exitCode).toBe(3);
        expect(run.stderr.split('\n').filter((line) => line.includes('state directory not used'))).toHaveLength(1);
        expect(await deployments(stack.gateway.url, 'planted-run', 'failure')).toBe(1);

        // Lock squatting: root's own state directory is private, so the other user cannot make its lock's socket.
        const own = join(workdir.path, 'root-state');
        mkdirSync(join(own, 'locks'), { recursive: true, mode: 0o700 });
        chmodSync(own, 0o700);
        const squat = `require('net').createServer().listen(${JSON.stringify(join(own, 'locks', 'squat.sock'))}).on('error', (e) => { console.log(e.code); process.exit(1); })`;
        // The test's own Node may sit in a folder only root can enter (CI installs Node 24 under a private temp folder).
        const userNode = await exec('runuser', ['-u', user, '--', 'test', '-x', process.execPath]).then(
          () => process.execPath,
          () => '/usr/bin/node',
        );
        const squatter = await exec('runuser', ['-u', user, '--', userNode, '-e', squat]).catch(
          (error: { stdout: string; code: number }) => error,
        );
        expect(squatter).toMatchObject({ code: 1, stdout: 'EACCES\n' });
        const record = await deployctl(
          ['run', '-s', 'squat', '-e', 'prod', '--timeout', '5', '--', 'sh', '-c', 'exit 3'],
          {
            env: gatewayEnv(stack.gateway.url, own),
          },
        );
        expect(record.exitCode).toBe(3);
        expect(record.stderr).not.toContain('held the lock');
        expect(await deployments(stack.gateway.url, 'squat', 'failure')).toBe(1);
      } finally {
        await exec('userdel', [user]).catch(() => undefined);
        rmSync(planted, { recursive: true, force: true });
        rmSync(rootOnly, { recursive: true, force: true });
      }
    },
    60_000,
  );
});

describe('a hostile server’s text (issue: CR, ESC, BEL and ::set-output reached the terminal raw)', () => {
  it.each([
    ['the Pushgateway backend', 'DEPLOYCTL_PUSHGATEWAY_URL'],
    ['the remote-write backend', 'DEPLOYCTL_REMOTE_WRITE_URL'],
  ])(
    '%s: no raw control character on stdout or stderr, and no line starts with ::',
    async (_, variable) => {
      const server = await startHostileServer(400);
      try {
        const stateDir = join(workdir.path, `hostile-${variable}`);
        for (const args of [
          ['record', '-s', 'hostile', '-e', 'prod', '--status', 'success', '--timeout', '2'],
          ['run', '-s', 'hostile', '-e', 'prod', '--timeout', '2', '--', 'true'],
          ['flush', '--timeout', '2'],
          ['status', '-s', 'hostile', '-e', 'prod', '--timeout', '2'],
        ]) {
          const result = await deployctl(args, {
            env: { [variable]: server.url, DEPLOYCTL_PROMETHEUS_URL: server.url, DEPLOYCTL_STATE_DIR: stateDir },
          });
          const output = result.stdout + result.stderr;
          expect({ args, raw: rawControls(output) }).toEqual({ args, raw: [] });
          expect(output.split('\n').filter((line) => line.startsWith('::'))).toEqual([]);
          if (args[0] === 'record') {
            expect(result.exitCode).toBe(0);
            expect(output).toContain('\\r::set-output');
          }
          if (args[0] === 'run') expect(result.exitCode).toBe(0);
        }
      } finally {
        await server.close();
      }
    },
    60_000,
  );
});

describe('leftovers of killed processes, and --shell', () => {
  it('temporary files older than the bound are removed by the next command that takes a lock; fresh ones stay (issue: kill -9 left .tmp files nothing removed)', async () => {
    const stateDir = join(workdir.path, 'leftovers');
    mkdirSync(join(stateDir, 'outbox'), { recursive: true, mode: 0o700 });
    mkdirSync(join(stateDir, 'started'), { mode: 0o700 });
    chmodSync(stateDir, 0o700);
    const old = [
      join(stateDir, 'outbox', '00000000000001-x.json.4242.deadbeef.tmp'),
      join(stateDir, 'started', 'deployctl-x.json.4242.cafe.tmp'),
    ];
    const fresh = join(stateDir, 'outbox', '00000000000002-y.json.4343.beef.tmp');
    const hourAgo = Date.now() / 1000 - 3600;
    for (const file of old) {
      writeFileSync(file, '{"format":');
      utimesSync(file, hourAgo, hourAgo);
    }
    writeFileSync(fresh, '{"format":');
    const result = await deployctl(['record', '-s', 'leftovers', '-e', 'prod', '--status', 'success'], {
      env: gatewayEnv(stack.gateway.url, stateDir),
    });
    expect(result.exitCode).toBe(0);
    expect(old.filter((file) => existsSync(file))).toEqual([]);
    expect(existsSync(fresh)).toBe(true);
    expect(await deployments(stack.gateway.url, 'leftovers', 'success')).toBe(1);
  });

  it('--shell with more than one argument: exit 2, a message saying to quote the command, nothing run or pushed', async () => {
    const marker = join(workdir.path, 'shell-marker');
    for (const command of ['run', 'step']) {
      const args = command === 'run' ? ['run'] : ['step', 'build'];
      const result = await deployctl([...args, '-s', 'shell-args', '-e', 'prod', '--shell', '--', 'touch', marker], {
        env: gatewayEnv(stack.gateway.url, join(workdir.path, 'shell-args')),
      });
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain('--shell takes the command as exactly one string');
      expect(result.stderr).toContain('quote the whole command');
    }
    expect(existsSync(marker)).toBe(false);
    expect(await deployments(stack.gateway.url, 'shell-args', 'success')).toBe(0);
    const one = await deployctl(['run', '-s', 'shell-args', '-e', 'prod', '--shell', '--', `touch '${marker}'`], {
      env: gatewayEnv(stack.gateway.url, join(workdir.path, 'shell-args')),
    });
    expect(one.exitCode).toBe(0);
    expect(existsSync(marker)).toBe(true);
  });
});
