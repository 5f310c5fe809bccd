import { accessSync, constants, lstatSync, mkdtempSync, rmSync, type Stats, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The folders deployctl keeps in a state directory; none may be a symlink or another's. */
const INSIDE = ['outbox', join('outbox', 'quarantine'), join('outbox', 'sent'), 'locks', 'started'];

const uid = process.getuid?.();

/** A directory on a read-only file system: nobody can write it, whatever its mode says. */
function readOnly(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EROFS';
  }
}

function problemWith(info: Stats, what: string, path: string): string | undefined {
  if (!info.isDirectory()) return `${what} is not a directory`;
  if (uid !== undefined && info.uid !== uid) return `${what} belongs to user ${info.uid}, not to this user (${uid})`;
  if ((info.mode & 0o022) !== 0 && !readOnly(path)) return `${what} can be written by other users`;
  return undefined;
}

/**
 * Why a state directory may not be used, or undefined when it may: deployctl keeps and later sends
 * what it finds there with this user's settings and credentials, so (as for the code cache) only a
 * directory of this user's that nobody else can write, with no symlink or other user's folder in
 * it. A directory not there yet is fine: deployctl makes it, private. The given path itself may be
 * a symlink (to such a directory).
 */
export function stateDirProblem(stateDir: string): string | undefined {
  let info: Stats;
  try {
    info = statSync(stateDir);
  } catch {
    return undefined;
  }
  const own = problemWith(info, `state directory ${stateDir}`, stateDir);
  if (own) return own;
  for (const folder of INSIDE) {
    let inside: Stats;
    try {
      inside = lstatSync(join(stateDir, folder));
    } catch {
      continue;
    }
    if (inside.isSymbolicLink()) return `${join(stateDir, folder)} is a symlink`;
    const problem = problemWith(inside, join(stateDir, folder), join(stateDir, folder));
    if (problem) return problem;
  }
  return undefined;
}

/**
 * A state directory to use instead of one that may not be: a private one of this process, removed
 * as it exits. Records are then sent straight out and none is kept for a later command.
 */
export function throwawayStateDir(): string {
  const dir = resolve(mkdtempSync(join(tmpdir(), 'deployctl-state-')));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
