import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deployctl, deployments, gatewayEnv, startDeployctl } from '../helpers/cli.js';
import { startDelayProxy } from '../helpers/delay-proxy.js';
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
