import { closeSync, constants, linkSync, lstatSync, mkdirSync, openSync, realpathSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { newRecordId } from '../adapters/random-id.js';
import { DeployctlError } from '../core/errors.js';
import type { Grouping } from '../core/record.js';
import { groupFileName } from '../core/record.js';
import { sha256Hex } from '../core/sha256.js';
import { sweepLeftovers } from './leftovers.js';

/**
 * The lock on one group of one state directory, so that concurrent deployctl processes read,
 * merge and write a group one after another.
 *
 * The lock is a unix-domain socket FILE in the state directory's `locks` folder, listened on by
 * its holder. It is the state directory's own, whatever path reaches it (a symlink, a bind mount)
 * and whatever network namespace the process is in (a filesystem socket is found by its inode),
 * and only who may write the state directory can take it (deployctl uses only a directory of its
 * own user that nobody else can write). It is taken atomically: the holder listens on a socket of
 * a name of its own, then hard-links it to the lock's name, which fails when the name exists. When
 * the holder dies, however it dies (kill -9 included), the kernel closes its socket and connecting
 * to the name is refused: such a stale name is removed under a short "breaker" file, and only if
 * it is still the very socket found dead, so that a live holder is never broken. On Windows the
 * lock is a named pipe, named after the state directory.
 */
export interface GroupLock {
  release(): Promise<void>;
}

class LockTimeoutError extends DeployctlError {
  constructor(grouping: Grouping, waitMs: number) {
    super(
      `another deployctl using this state directory held the lock on ${grouping.service} in ${grouping.environment} for longer than ${(waitMs / 1000).toFixed(1)}s`,
    );
    this.name = 'LockTimeoutError';
  }
}

/** A breaker file older than this was left by a process killed in the middle of removing a stale lock. */
const BREAKER_STALE_MS = 5_000;
/** The longest socket path the kernel takes (sun_path less its NUL); longer ones go through /proc. */
const MAX_SOCKET_PATH = 100;

/** The lock's socket path of one group, in one state directory. */
export function lockAddress(
  stateDir: string,
  grouping: Grouping,
  platform: NodeJS.Platform = process.platform,
): string {
  if (platform === 'win32') {
    const scope = sha256Hex(resolve(stateDir)).slice(0, 16);
    return `\\\\.\\pipe\\deployctl-${scope}-${groupFileName(grouping)}.lock`;
  }
  return join(resolve(stateDir), 'locks', `${sha256Hex(groupFileName(grouping)).slice(0, 24)}.sock`);
}

/** A socket in the abstract namespace, named after the directory (its real path, when it has one). */
function fallbackAddress(stateDir: string, grouping: Grouping): string {
  let real = resolve(stateDir);
  try {
    real = realpathSync(stateDir);
  } catch {
    // not there
  }
  return `\0deployctl-${sha256Hex(real).slice(0, 16)}-${sha256Hex(groupFileName(grouping)).slice(0, 24)}.lock`;
}

/** A path the kernel takes for a socket in `dir`: through the directory's descriptor when the real one is too long. */
function socketPath(dirFd: number | undefined, dir: string, name: string): string {
  return dirFd === undefined ? join(dir, name) : `/proc/self/fd/${dirFd}/${name}`;
}

function listen(path: string): Promise<net.Server | undefined> {
  return new Promise((done, fail) => {
    const server = net.createServer((socket) => socket.destroy());
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') done(undefined);
      else fail(error);
    });
    server.listen({ path, exclusive: true }, () => {
      server.unref();
      done(server);
    });
  });
}

/** How connecting to a lock's socket went: a live holder answered, or the error's code (ECONNREFUSED: its holder died). */
function knock(path: string): Promise<'answered' | string> {
  return new Promise((done) => {
    const socket = net.connect(path);
    socket.once('connect', () => {
      socket.destroy();
      done('answered');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? 'error'));
  });
}

/**
 * Removes the lock's socket when its holder is dead, under the breaker so that breakers go one at
 * a time. Only a refused connection proves a dead holder: the file was there and nobody listens,
 * and from then on nobody but a breaker can remove it, so the file removed is the one found dead.
 */
async function breakStale(lock: string, lockName: string): Promise<void> {
  const breaker = `${lock}.break`;
  let fd: number;
  try {
    fd = openSync(breaker, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW, 0o600);
  } catch {
    try {
      if (Date.now() - lstatSync(breaker).mtimeMs > BREAKER_STALE_MS) unlinkSync(breaker);
    } catch {
      // gone meanwhile
    }
    return;
  }
  try {
    if ((await knock(lockName)) === 'ECONNREFUSED') unlinkSync(lock);
  } finally {
    closeSync(fd);
    unlinkSync(breaker);
  }
}

async function acquireOnce(lock: string, dirFd: number | undefined, dir: string): Promise<net.Server | undefined> {
  const own = `.${newRecordId().slice(0, 16)}.sock`;
  const server = await listen(socketPath(dirFd, dir, own));
  if (!server) return undefined;
  const ownPath = join(dir, own);
  try {
    linkSync(ownPath, lock);
    unlinkSync(ownPath);
    return server;
  } catch (error) {
    unlinkSync(ownPath);
    server.close();
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  // Taken, or left by a holder that died.
  const lockName = socketPath(dirFd, dir, lock.slice(dir.length + 1));
  if ((await knock(lockName)) === 'ECONNREFUSED') await breakStale(lock, lockName);
  return undefined;
}

/** Takes the lock, waiting at most `waitMs`; polls every 5–25 ms. */
export async function acquireGroupLock(stateDir: string, grouping: Grouping, waitMs: number): Promise<GroupLock> {
  const lock = lockAddress(stateDir, grouping);
  const deadline = Date.now() + waitMs;
  if (process.platform === 'win32') return acquirePipe(lock, grouping, waitMs, deadline);
  const dir = join(resolve(stateDir), 'locks');
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    // A state directory that cannot be written (read-only, full): nothing is kept in it, and the
    // record still goes out, under a lock of this machine's named after the directory itself.
    if (process.platform !== 'linux') throw error;
    return acquirePipe(fallbackAddress(stateDir, grouping), grouping, waitMs, deadline);
  }
  const dirFd =
    dir.length + 40 > MAX_SOCKET_PATH ? openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY) : undefined;
  try {
    for (;;) {
      const server = await acquireOnce(lock, dirFd, dir);
      if (server) {
        sweepLeftovers(resolve(stateDir));
        return {
          release: () => {
            // The name goes first: a holder's name is never removed by anyone else while it lives.
            try {
              unlinkSync(lock);
            } catch {
              // removed already
            }
            server.close();
            return Promise.resolve();
          },
        };
      }
      if (Date.now() >= deadline) throw new LockTimeoutError(grouping, waitMs);
      await new Promise((done) =>
        setTimeout(done, Math.min(5 + Math.random() * 20, Math.max(1, deadline - Date.now()))),
      );
    }
  } finally {
    if (dirFd !== undefined) closeSync(dirFd);
  }
}

/** A named pipe (Windows) or an abstract socket (Linux): the name is the lock, given back by the kernel. */
async function acquirePipe(pipe: string, grouping: Grouping, waitMs: number, deadline: number): Promise<GroupLock> {
  for (;;) {
    const server = await listen(pipe);
    if (server) {
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
