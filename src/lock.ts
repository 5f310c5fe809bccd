import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { DeployctlError } from './errors.js';
import type { Grouping } from './gateway/group-state.js';
import { groupFileName } from './state-dir.js';

/**
 * Runs `fn` while holding this machine's lock on one group, so that concurrent deployctl
 * processes read, merge and write a group one after another. Waits at most `waitMs`.
 */
export async function withGroupLock<T>(stateDir: string, grouping: Grouping, waitMs: number, fn: () => Promise<T>): Promise<T> {
  const dir = join(stateDir, 'locks');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const target = join(dir, groupFileName(grouping));
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(target, {
      realpath: false,
      stale: 10_000,
      retries: { retries: Math.max(1, Math.ceil(waitMs / 25)), minTimeout: 5, maxTimeout: 50, factor: 1.5, randomize: true, maxRetryTime: waitMs },
    });
  } catch (error) {
    throw new DeployctlError(
      `another deployctl on this machine held the lock on ${grouping.service} in ${grouping.environment} for longer than ${Math.round(waitMs / 1000)}s`,
      1,
      `lock ${target}.lock: ${(error as Error).message}`,
    );
  }
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}
