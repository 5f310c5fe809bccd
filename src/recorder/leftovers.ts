import { lstatSync, readdirSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A temporary file older than this was left by a killed process: no write takes anywhere near it. */
const LEFTOVER_AGE_MS = 10 * 60_000;

/** The folders where deployctl writes through temporary files, and its lock sockets' own names. */
const FOLDERS = ['outbox', join('outbox', 'sent'), join('outbox', 'quarantine'), 'started', 'locks'];

const leftover = (folder: string, name: string) =>
  name.endsWith('.tmp') || (folder === 'locks' && name.startsWith('.') && name.endsWith('.sock'));

/**
 * Removes what killed processes left in a state directory: temporary files (a write cut short by
 * kill -9) and the sockets a lock taker names before linking, once older than LEFTOVER_AGE_MS.
 * At most once per LEFTOVER_AGE_MS (a stamp in `locks/`), so that it costs a stat on most calls;
 * never throws.
 */
export function sweepLeftovers(stateDir: string, now = Date.now()): void {
  const stamp = join(stateDir, 'locks', 'swept');
  try {
    if (now - lstatSync(stamp).mtimeMs < LEFTOVER_AGE_MS) return;
  } catch {
    // never swept
  }
  try {
    writeFileSync(stamp, '', { mode: 0o600 });
    utimesSync(stamp, now / 1000, now / 1000);
  } catch {
    return;
  }
  for (const folder of FOLDERS) {
    let names: string[];
    try {
      names = readdirSync(join(stateDir, folder));
    } catch {
      continue;
    }
    for (const name of names) {
      if (!leftover(folder, name)) continue;
      const path = join(stateDir, folder, name);
      try {
        const info = lstatSync(path);
        if ((info.isFile() || info.isSocket()) && now - info.mtimeMs > LEFTOVER_AGE_MS) unlinkSync(path);
      } catch {
        // gone meanwhile
      }
    }
  }
}
