import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { GroupRecord } from '../../src/core/record.js';
import { Outbox } from '../../src/recorder/outbox.js';
import { deployctl, deployments, startDeployctl } from '../helpers/cli.js';
import { freePort, type RunningServer, startPushgateway, tempDir } from '../helpers/pushgateway.js';
import { sleep } from '../helpers/wait.js';

/**
 * 20,000 kept records in 100 groups: flush honours --timeout however many are kept, and, the
 * gateway up, delivers each exactly once, a kill -9 mid-flush included.
 */
const RECORDS = 20_000;
const GROUPS = 100;
const workdir = tempDir();
afterAll(() => workdir.remove());

const statusOf = (i: number) => (i % 7 === 0 ? 'failure' : i % 11 === 0 ? 'cancelled' : 'success');
/** The oracle: deployments by status of each group, from the test's own script. */
function expectedTotals(): Map<string, Record<string, number>> {
  const totals = new Map<string, Record<string, number>>();
  for (let i = 0; i < RECORDS; i++) {
    const service = `scale-${i % GROUPS}`;
    const t = totals.get(service) ?? { success: 0, failure: 0, cancelled: 0 };
    t[statusOf(i)]! += 1;
    totals.set(service, t);
  }
  return totals;
}
const kept = (stateDir: string) => readdirSync(join(stateDir, 'outbox')).filter((f) => f.endsWith('.json')).length;

describe('flush with 20,000 kept records in 100 groups', () => {
  it('honours --timeout with the gateway down, then delivers each exactly once (kill -9 mid-flush included)', async () => {
    const stateDir = join(workdir.path, 'state');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const target = { backend: 'pushgateway' as const, url: new URL(url).href };
    const outbox = new Outbox(stateDir);
    const now = Date.now() / 1000 - 3_600;
    // Kept by the recorder's own module, as commands keep them, a hundred at a time.
    for (let start = 0; start < RECORDS; start += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, k) => {
          const i = start + k;
          const record: GroupRecord = {
            kind: 'deployment',
            id: `scale-${i}`,
            status: statusOf(i),
            labels: {},
            version: '',
            commit: '',
            finishedAt: now + i / 1000,
          };
          const grouping = { job: 'deployctl', service: `scale-${i % GROUPS}`, environment: 'prod' };
          return outbox.keep(target, grouping, record, now + i / 1000);
        }),
      );
    }
    expect(kept(stateDir)).toBe(RECORDS);
    const env = { DEPLOYCTL_PUSHGATEWAY_URL: url, DEPLOYCTL_STATE_DIR: stateDir };

    // The gateway down: the budget holds, reading the outbox included.
    const started = Date.now();
    const down = await deployctl(['flush', '--timeout', '2'], { env, timeout: 60_000 });
    const elapsed = Date.now() - started;
    expect(down.exitCode).toBe(1);
    expect(elapsed).toBeLessThan(2_000 + 3_000);
    expect(kept(stateDir)).toBe(RECORDS);

    let gateway: RunningServer | undefined;
    try {
      gateway = await startPushgateway([], { port });
      // kill -9 once some groups are written, bounded in time.
      const first = startDeployctl(['flush', '--timeout', '120'], { env });
      const deadline = Date.now() + 60_000;
      while (kept(stateDir) > RECORDS - 3_000 && Date.now() < deadline && first.child.exitCode === null)
        await sleep(50);
      first.child.kill('SIGKILL');
      await first.exited;
      expect(kept(stateDir)).toBeGreaterThan(0);
      // Then flushes until nothing is kept: at most five, each bounded.
      for (let round = 0; round < 5 && kept(stateDir) > 0; round++) {
        const again = await deployctl(['flush', '--timeout', '120'], { env, timeout: 150_000 });
        expect([0, 1]).toContain(again.exitCode);
      }
      expect(kept(stateDir)).toBe(0);
      for (const [service, expected] of expectedTotals()) {
        const found = {
          success: await deployments(gateway.url, service, 'success'),
          failure: await deployments(gateway.url, service, 'failure'),
          cancelled: await deployments(gateway.url, service, 'cancelled'),
        };
        expect(found, service).toEqual(expected);
      }
    } finally {
      await gateway?.stop();
    }
  }, 600_000);
});
