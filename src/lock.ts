import { open, readFile, rm, stat, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DeployctlError } from './errors.js';
import type { Grouping } from './gateway/group-state.js';
import { groupFileName } from './state-dir.js';

/** A lock older than this is taken to be left by a process that died without releasing it. */
const STALE_MS = 60_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes a lock file whose owner is gone (or that is too old), and says whether it did. */
async function breakIfStale(path: string): Promise<boolean> {
  try {
    const [content, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    const pid = Number(content.split(' ')[0]);
    if ((Number.isInteger(pid) && pid > 0 && !alive(pid)) || Date.now() - info.mtimeMs > STALE_MS) {
      await rm(path, { force: true });
      return true;
    }
  } catch {
    return true; // released meanwhile
  }
  return false;
}

/**
 * Runs `fn` while holding this machine's lock on one group, so that concurrent deployctl
 * processes read, merge and write a group one after another. The lock is a file created with
 * O_EXCL holding the owner's pid; one left by a dead process is broken. Waits at most `waitMs`.
 */
export async function withGroupLock<T>(stateDir: string, grouping: Grouping, waitMs: number, fn: () => Promise<T>): Promise<T> {
  const dir = join(stateDir, 'locks');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${groupFileName(grouping)}.lock`);
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(`${process.pid} ${Date.now()}\n`);
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (await breakIfStale(path)) continue;
      if (Date.now() >= deadline) {
        throw new DeployctlError(
          `another deployctl on this machine held the lock on ${grouping.service} in ${grouping.environment} for longer than ${(waitMs / 1000).toFixed(1)}s`,
          1,
          `the lock is ${path}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(path, { force: true });
  }
}
