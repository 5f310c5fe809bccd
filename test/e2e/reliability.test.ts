import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deployctl, gatewayEnv, gatewaySample, hasGroup, scrape } from '../helpers/cli.js';
import { value } from '../helpers/exposition.js';
import { TestRepo } from '../helpers/git.js';
import { startProxy } from '../helpers/proxy.js';
import { freePort, startPushgateway, useGatewayAndWorkdir } from '../helpers/pushgateway.js';

const stack = useGatewayAndWorkdir();
const { workdir } = stack;

const stateDir = (name: string) => join(workdir.path, name);
const cli = (args: string[], env: Record<string, string> = {}) =>
  deployctl(args, {
    env: gatewayEnv(stack.gateway.url, stateDir('default'), env),
    cwd: workdir.path,
    timeout: 60_000,
  });

/** deployctl_deployments_total of a service and status: undefined when the gateway holds none. */
const success = (url: string, service: string, status = 'success') =>
  gatewaySample(url, 'deployctl_deployments_total', { service, status });

/** A proxy in front of the real gateway that answers 503 until `up()`: one URL, down and then up. */
async function downThenUp() {
  let up = false;
  const proxy = await startProxy(stack.gateway.url, () => (up ? 'forward' : { status: 503, body: 'down' }));
  return { url: proxy.url, up: () => (up = true), close: () => proxy.close() };
}

describe('gateway down, then up', () => {
  it('keeps records while the gateway is stopped and flush sends each exactly once after it starts', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = { DEPLOYCTL_PUSHGATEWAY_URL: url, DEPLOYCTL_STATE_DIR: stateDir('outage') };
    let stopped = await startPushgateway([], { port });
    await cli(['record', '-s', 'outage', '-e', 'prod', '--status', 'success'], env);
    await stopped.stop();

    for (const status of ['failure', 'success', 'success']) {
      const result = await cli(['record', '-s', 'outage', '-e', 'prod', '--status', status, '--timeout', '0.5'], env);
      expect(result.exitCode).toBe(0);
      expect(result.stderr).toContain('is not on the gateway yet');
    }
    expect(readdirSync(join(stateDir('outage'), 'outbox')).filter((f) => f.endsWith('.json'))).toHaveLength(3);

    stopped = await startPushgateway([], { port });
    try {
      // The restarted gateway is empty (no persistence): what it gets is exactly the three kept records.
      const flush = await cli(['flush'], env);
      expect(flush.exitCode).toBe(0);
      expect(flush.stdout).toContain('sent 3 kept record(s); 0 still kept');
      expect(await success(url, 'outage')).toBe(2);
      expect(await success(url, 'outage', 'failure')).toBe(1);
      expect(readdirSync(join(stateDir('outage'), 'outbox')).filter((f) => f.endsWith('.json'))).toHaveLength(0);
    } finally {
      await stopped.stop();
    }
  });

  it('sends kept records before a new one, and a kept record sent again after a crash counts once', async () => {
    const gateway = await downThenUp();
    try {
      const env = { DEPLOYCTL_STATE_DIR: stateDir('crash'), DEPLOYCTL_PUSHGATEWAY_URL: gateway.url };
      await cli(['record', '-s', 'crash', '-e', 'prod', '--status', 'success', '--timeout', '0.5'], env);
      const outbox = join(stateDir('crash'), 'outbox');
      const [kept] = readdirSync(outbox).filter((f) => f.endsWith('.json'));
      copyFileSync(join(outbox, kept!), join(workdir.path, 'kept-copy.json'));

      gateway.up();
      const next = await cli(['record', '-s', 'crash', '-e', 'prod', '--status', 'failure'], env);
      expect(next.exitCode).toBe(0);
      expect(next.stderr).toContain('also sent 1 record(s) kept earlier');
      expect(await success(stack.gateway.url, 'crash')).toBe(1);
      expect(await success(stack.gateway.url, 'crash', 'failure')).toBe(1);

      // As if deployctl died after the push but before removing the file.
      copyFileSync(join(workdir.path, 'kept-copy.json'), join(outbox, kept!));
      const flush = await cli(['flush'], env);
      expect(flush.exitCode).toBe(0);
      expect(flush.stdout).toBe(`${gateway.url}/: sent 1 kept record(s); 0 still kept\n`);
      expect(await success(stack.gateway.url, 'crash')).toBe(1);
    } finally {
      await gateway.close();
    }
  });

  it('quarantines a file in the outbox that is not a record, sends nothing for it, and says so', async () => {
    const gateway = await downThenUp();
    try {
      const env = { DEPLOYCTL_STATE_DIR: stateDir('corrupt'), DEPLOYCTL_PUSHGATEWAY_URL: gateway.url };
      await cli(['record', '-s', 'corrupt', '-e', 'prod', '--status', 'success', '--timeout', '0.5'], env);
      writeFileSync(join(stateDir('corrupt'), 'outbox', '00000000000000-broken.json'), '{"format":1,"grou');
      gateway.up();
      const flush = await cli(['flush'], env);
      expect(flush.stderr).toMatch(
        /.*00000000000000-broken\.json is not a record deployctl can send \(not valid JSON\); moved to .*quarantine\/00000000000000-broken\.json/,
      );
      expect(flush.exitCode).toBe(1);
      expect(await success(stack.gateway.url, 'corrupt')).toBe(1);
      expect(readdirSync(join(stateDir('corrupt'), 'outbox', 'quarantine'))).toEqual(['00000000000000-broken.json']);
    } finally {
      await gateway.close();
    }
  });

  it('lets two flushes at once send each kept record once', async () => {
    const gateway = await downThenUp();
    try {
      const env = { DEPLOYCTL_STATE_DIR: stateDir('twoflush'), DEPLOYCTL_PUSHGATEWAY_URL: gateway.url };
      for (let i = 0; i < 6; i++) {
        await cli(['record', '-s', `twoflush-${i % 2}`, '-e', 'prod', '--status', 'success', '--timeout', '0.3'], env);
      }
      gateway.up();
      const [a, b] = await Promise.all([cli(['flush'], env), cli(['flush'], env)]);
      expect(a.exitCode + b.exitCode).toBe(0);
      expect(await success(stack.gateway.url, 'twoflush-0')).toBe(3);
      expect(await success(stack.gateway.url, 'twoflush-1')).toBe(3);
    } finally {
      await gateway.close();
    }
  });
});

describe('another machine writing over a record', () => {
  it('finds a record another writer replaced on the next record of the group, and counts it then', async () => {
    const machineA = { DEPLOYCTL_STATE_DIR: stateDir('machine-a') };
    await cli(['record', '-s', 'overwritten', '-e', 'prod', '--status', 'success'], machineA);
    const before = await (await fetch(`${stack.gateway.url}/api/v1/metrics`)).text();
    // Machine A records; machine B read the group before that (its read is the stale answer
    // above) and writes after it, replacing A's record: the gateway has no compare-and-swap.
    const a = await cli(['record', '-s', 'overwritten', '-e', 'prod', '--status', 'failure'], machineA);
    expect(a.exitCode).toBe(0);
    const stale = await startProxy(stack.gateway.url, (request) =>
      request.method === 'GET' && request.url === '/api/v1/metrics' ? { status: 200, body: before } : 'forward',
    );
    try {
      const b = await cli(['record', '-s', 'overwritten', '-e', 'prod', '--status', 'success'], {
        DEPLOYCTL_STATE_DIR: stateDir('machine-b'),
        DEPLOYCTL_PUSHGATEWAY_URL: stale.url,
      });
      expect(b.exitCode).toBe(0);
    } finally {
      await stale.close();
    }
    // A's failure is gone from the gateway: 2 successes, no failure.
    expect(await success(stack.gateway.url, 'overwritten')).toBe(2);
    expect(await success(stack.gateway.url, 'overwritten', 'failure')).toBe(0);

    // A's next record reads the group anyway, sees the failure missing, and sends it again.
    const next = await cli(['record', '-s', 'overwritten', '-e', 'prod', '--status', 'success'], machineA);
    expect(next.exitCode).toBe(0);
    expect(next.stderr).toContain(
      '1 earlier record(s) of overwritten in prod were overwritten on the gateway by another writer; sending them again',
    );
    expect(await success(stack.gateway.url, 'overwritten')).toBe(3);
    expect(await success(stack.gateway.url, 'overwritten', 'failure')).toBe(1);
    // And a flush confirms what is left without counting anything twice.
    const flush = await cli(['flush'], machineA);
    expect(flush.exitCode).toBe(0);
    expect(await success(stack.gateway.url, 'overwritten')).toBe(3);
    expect(await success(stack.gateway.url, 'overwritten', 'failure')).toBe(1);
    expect(readdirSync(join(stateDir('machine-a'), 'outbox', 'sent'))).toEqual([]);
  });
});

describe('lost answers, failing and hanging gateways', () => {
  it('counts a push once when the gateway stored it but the answer was lost', async () => {
    let dropped = 0;
    const proxy = await startProxy(stack.gateway.url, (request) =>
      request.method === 'POST' && dropped++ === 0 ? 'drop-response' : 'forward',
    );
    try {
      const result = await cli(
        ['record', '-s', 'lost-answer', '-e', 'prod', '--status', 'success', '--duration', '12'],
        { DEPLOYCTL_PUSHGATEWAY_URL: proxy.url },
      );
      expect(result.exitCode).toBe(0);
      expect(result.stderr).toBe('');
      expect(result.stdout).toMatch(/^recorded success of lost-answer in prod/);
      expect(proxy.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
      expect(await success(stack.gateway.url, 'lost-answer')).toBe(1);
      const samples = await scrape(stack.gateway.url);
      expect(value(samples, 'deployctl_deployment_duration_seconds_count', { service: 'lost-answer' })).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  it('retries 5xx answers and succeeds when the gateway recovers', async () => {
    const proxy = await startProxy(stack.gateway.url, (_request, index) =>
      index < 3 ? { status: 503, body: 'overloaded' } : 'forward',
    );
    try {
      const result = await cli(['record', '-s', 'flaky', '-e', 'prod', '--status', 'success', '--verbose'], {
        DEPLOYCTL_PUSHGATEWAY_URL: proxy.url,
      });
      expect(result.exitCode).toBe(0);
      expect(result.stderr).toMatch(/attempt 3 failed: .*HTTP 503: overloaded/);
      expect(await success(stack.gateway.url, 'flaky')).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  it('stops retrying a hanging gateway within the --timeout budget and keeps the record', async () => {
    const proxy = await startProxy(stack.gateway.url, () => 'hang');
    try {
      const started = Date.now();
      const result = await cli(['record', '-s', 'hang', '-e', 'prod', '--status', 'success', '--timeout', '2'], {
        DEPLOYCTL_PUSHGATEWAY_URL: proxy.url,
        DEPLOYCTL_STATE_DIR: stateDir('hang'),
      });
      const elapsed = Date.now() - started;
      expect(result.exitCode).toBe(0);
      // The attempts' own time, as reported, falls short of 2 s by whatever came before the first
      // one (less on a busy machine); that the budget was spent shows in the time the command took.
      const reported = /timed out after \d+ ms \(\d+ attempts in (\d+\.\d)s\)/.exec(result.stderr);
      expect(reported, result.stderr).not.toBeNull();
      expect(Number(reported![1])).toBeLessThan(3);
      expect(elapsed).toBeGreaterThanOrEqual(2_000);
      expect(elapsed).toBeLessThan(2_000 + 1_500);
      expect(proxy.requests.length).toBeGreaterThanOrEqual(2);
      expect(readdirSync(join(stateDir('hang'), 'outbox')).filter((f) => f.endsWith('.json'))).toHaveLength(1);
    } finally {
      await proxy.close();
    }
  });

  it('does not retry a 4xx and shows the gateway’s reason', async () => {
    const proxy = await startProxy(stack.gateway.url, (request) =>
      request.method === 'POST'
        ? { status: 400, body: 'pushed metrics are invalid or inconsistent with existing metrics: bad thing' }
        : 'forward',
    );
    try {
      const result = await cli(['record', '-s', 'refused', '-e', 'prod', '--status', 'success'], {
        DEPLOYCTL_PUSHGATEWAY_URL: proxy.url,
        DEPLOYCTL_STATE_DIR: stateDir('refused'),
      });
      expect(result.exitCode).toBe(0);
      expect(result.stderr).toContain(
        'refused to store the metrics on it: HTTP 400: pushed metrics are invalid or inconsistent with existing metrics: bad thing',
      );
      expect(proxy.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    } finally {
      await proxy.close();
    }
  });

  it('names the family and what to do when the group holds a deployctl family of another type', async () => {
    const fresh = await startPushgateway();
    try {
      const pushed = await fetch(`${fresh.url}/metrics/job/deployctl/service/quirk/environment/prod`, {
        method: 'PUT',
        body: '# TYPE deployctl_deployments_total gauge\ndeployctl_deployments_total 5\n',
      });
      expect(pushed.status).toBe(200);
      const result = await cli(['record', '-s', 'quirk', '-e', 'prod', '--status', 'success'], {
        DEPLOYCTL_PUSHGATEWAY_URL: fresh.url,
        DEPLOYCTL_STATE_DIR: stateDir('quirk'),
      });
      expect(result.exitCode).toBe(0);
      expect(result.stderr).toContain(
        'the gateway already holds deployctl_deployments_total as a gauge, but deployctl pushes it as a counter',
      );
      expect(result.stderr).toContain('remove the family or the group (deployctl delete) and record again');
      expect(result.stderr).not.toMatch(/\n\s+at /);
    } finally {
      await fresh.stop();
    }
  });

  it('names the family when a hand-made push gave it other labels', async () => {
    const pushed = await fetch(`${stack.gateway.url}/metrics/job/deployctl/service/labels-quirk/environment/prod`, {
      method: 'PUT',
      body: '# TYPE deployctl_deployments_total counter\ndeployctl_deployments_total{result="ok"} 5\n',
    });
    expect(pushed.status).toBe(200);
    const result = await cli(['record', '-s', 'labels-quirk', '-e', 'prod', '--status', 'success'], {
      DEPLOYCTL_STATE_DIR: stateDir('labels-quirk'),
    });
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain(
      "the gateway already holds deployctl_deployments_total with the labels {result}, but deployctl's series all have {status}",
    );
  });
});

describe('concurrency', () => {
  it('lands 30 concurrent processes for 30 services exactly', async () => {
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        cli(['record', '-s', `many-${i}`, '-e', 'prod', '--status', 'success', '--timeout', '30']),
      ),
    );
    expect(results.map((r) => r.exitCode)).toEqual(Array(30).fill(0));
    const samples = await scrape(stack.gateway.url);
    for (let i = 0; i < 30; i++)
      expect(value(samples, 'deployctl_deployments_total', { service: `many-${i}`, status: 'success' })).toBe(1);
  });

  it('lands 20 concurrent processes for one service exactly', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        cli([
          'record',
          '-s',
          'same',
          '-e',
          'prod',
          '--status',
          i % 4 === 0 ? 'failure' : 'success',
          '--duration',
          String(i + 1),
          '--timeout',
          '30',
        ]),
      ),
    );
    expect(results.map((r) => r.stderr).filter(Boolean)).toEqual([]);
    const samples = await scrape(stack.gateway.url);
    expect(value(samples, 'deployctl_deployments_total', { service: 'same', status: 'success' })).toBe(15);
    expect(value(samples, 'deployctl_deployments_total', { service: 'same', status: 'failure' })).toBe(5);
    const sum =
      value(samples, 'deployctl_deployment_duration_seconds_sum', { service: 'same', status: 'success' }) +
      value(samples, 'deployctl_deployment_duration_seconds_sum', { service: 'same', status: 'failure' });
    expect(sum).toBe(210);
  });

  it('has nothing for a service that was never recorded', async () => {
    expect(await hasGroup(stack.gateway.url, 'never')).toBe(false);
  });
});

describe('a record whose git history is slow to read', () => {
  it("neither holds the group's lock nor spends --timeout while git runs", async () => {
    const repo = new TestRepo(join(workdir.path, 'slow-git-repo'));
    repo.git('commit', '-q', '--allow-empty', '-m', 'one');
    // git that takes 2 s to read history or describe (a long history, a slow disk).
    const bin = join(workdir.path, 'slow-git-bin');
    mkdirSync(bin, { recursive: true });
    const realGit = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
    writeFileSync(join(bin, 'git'), `#!/bin/sh\ncase "$1" in log|describe) sleep 2;; esac\nexec ${realGit} "$@"\n`);
    chmodSync(join(bin, 'git'), 0o755);
    const env = { DEPLOYCTL_PUSHGATEWAY_URL: stack.gateway.url, DEPLOYCTL_STATE_DIR: stateDir('slow-git') };
    const started = Date.now();
    const slow = deployctl(
      ['record', '-s', 'slow-git', '-e', 'prod', '--status', 'success', '--timeout', '1', '--strict'],
      {
        env: { ...env, PATH: `${bin}:${process.env.PATH}`, GIT_CONFIG_NOSYSTEM: '1', HOME: repo.path },
        cwd: repo.path,
        timeout: 60_000,
      },
    );
    // Another record of the same group on this machine, meanwhile: not held up by the slow one.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const other = await deployctl(
      ['record', '-s', 'slow-git', '-e', 'prod', '--status', 'failure', '--timeout', '1', '--strict'],
      { env, cwd: workdir.path },
    );
    expect(other.exitCode, other.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(1_900);
    const done = await slow;
    expect(done.exitCode, done.stderr).toBe(0);
    expect(done.stderr).not.toMatch(/not on the gateway|no time left/);
    expect(await success(stack.gateway.url, 'slow-git')).toBe(1);
    expect(await success(stack.gateway.url, 'slow-git', 'failure')).toBe(1);
  });
});
