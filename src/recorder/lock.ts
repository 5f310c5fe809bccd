import net from 'node:net';
import { resolve } from 'node:path';
import { DeployctlError } from '../core/errors.js';
import type { Grouping } from '../core/record.js';
import { groupFileName } from '../core/record.js';
import { sha256Hex } from '../core/sha256.js';

/**
 * This machine's lock on one group, so that concurrent deployctl processes read, merge and write
 * a group one after another.
 *
 * The lock is a listening socket whose name is derived from the state directory and the group:
 * on Linux a socket in the abstract namespace, on Windows a named pipe. The kernel gives the name
 * back the moment its holder exits, however it exits (kill -9 included), so there is no lock file
 * to go stale, nothing to break, no clock, and nothing a directory, symlink or empty file at some
 * path could confuse. A live holder keeps it for as long as it lives. Other systems (macOS, BSD)
 * have neither, and use a socket file in the state directory, removed when it refuses connections
 * (its holder is gone); two waiters that both find it gone at the same moment can both take it,
 * a window that exists only after a crash.
 */
export interface GroupLock {
  release(): Promise<void>;
}

class LockTimeoutError extends DeployctlError {
  constructor(grouping: Grouping, waitMs: number) {
    super(
      `another deployctl on this machine held the lock on ${grouping.service} in ${grouping.environment} for longer than ${(waitMs / 1000).toFixed(1)}s`,
    );
    this.name = 'LockTimeoutError';
  }
}

/** The socket name of one group's lock, for one state directory (one "machine"). */
export function lockAddress(
  stateDir: string,
  grouping: Grouping,
  platform: NodeJS.Platform = process.platform,
): string {
  const scope = sha256Hex(resolve(stateDir)).slice(0, 16);
  const name = `deployctl-${scope}-${groupFileName(grouping)}.lock`;
  if (platform === 'linux') return `\0${name}`;
  if (platform === 'win32') return `\\\\.\\pipe\\${name}`;
  return resolve(stateDir, 'locks', `${groupFileName(grouping)}.sock`);
}

type Attempt = { held: net.Server } | { busy: true } | { stale: true };

function tryListen(address: string): Promise<Attempt> {
  return new Promise((done, fail) => {
    const server = net.createServer((socket) => socket.destroy());
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') done(address.startsWith('/') ? { stale: true } : { busy: true });
      else fail(error);
    });
    server.listen({ path: address, exclusive: true }, () => {
      server.unref();
      done({ held: server });
    });
  });
}

/** For a socket file: does a live process answer on it? */
function answers(address: string): Promise<boolean> {
  return new Promise((done) => {
    const socket = net.connect(address);
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

async function acquireOnce(address: string): Promise<net.Server | undefined> {
  const attempt = await tryListen(address);
  if ('held' in attempt) return attempt.held;
  if ('busy' in attempt) return undefined;
  // A socket file: busy if someone answers on it, else left by a holder that died.
  if (await answers(address)) return undefined;
  const { rm } = await import('node:fs/promises');
  await rm(address, { force: true });
  const again = await tryListen(address);
  return 'held' in again ? again.held : undefined;
}

/** Takes the lock, waiting at most `waitMs`; polls every 5–25 ms. */
export async function acquireGroupLock(stateDir: string, grouping: Grouping, waitMs: number): Promise<GroupLock> {
  const address = lockAddress(stateDir, grouping);
  if (address.startsWith('/')) {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(resolve(stateDir, 'locks'), { recursive: true, mode: 0o700 });
  }
  const deadline = Date.now() + waitMs;
  for (;;) {
    const server = await acquireOnce(address);
    if (server) {
      // close() gives the name back at once (the listening socket is closed then; only its callback waits a turn).
      return {
        release: () => {
          server.close();
          return Promise.resolve();
        },
      };
    }
    if (Date.now() >= deadline) throw new LockTimeoutError(grouping, waitMs);
    await new Promise((done) => setTimeout(done, Math.min(5 + Math.random() * 20, Math.max(1, deadline - Date.now()))));
  }
}

export async function withGroupLock<T>(
  stateDir: string,
  grouping: Grouping,
  waitMs: number,
  fn: () => Promise<T>,
): Promise<T> {
  const lock = await acquireGroupLock(stateDir, grouping, waitMs);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
