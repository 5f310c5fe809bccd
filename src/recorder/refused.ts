import { mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileDurably } from '../adapters/durable-file.js';
import type { Target } from '../core/record.js';
import { sha256Hex } from '../core/sha256.js';

/** How long a refused connection is remembered: the commands of one deploy script, not longer. */
export const REMEMBER_REFUSED_SECONDS = 30;
/** The budget of a command that finds its target refused a moment ago: one try, no backoff. */
export const AFTER_REFUSED_SECONDS = 0.3;

const fileOf = (stateDir: string, target: Target) =>
  join(stateDir, 'refused', sha256Hex(`${target.backend} ${target.url}`).slice(0, 16));

/**
 * Whether this target refused a connection (ECONNREFUSED: nothing listens there) less than
 * REMEMBER_REFUSED_SECONDS ago, as noted in the state directory. Anything unreadable is "no".
 */
export function refusedRecently(stateDir: string, target: Target, now: number): boolean {
  try {
    const at = Number(readFileSync(fileOf(stateDir, target), 'utf8'));
    return Number.isFinite(at) && now - at >= 0 && now - at < REMEMBER_REFUSED_SECONDS;
  } catch {
    return false;
  }
}

/** Notes a refused connection (best effort: a state directory that cannot be written costs only this). */
export function rememberRefused(stateDir: string, target: Target, now: number): void {
  try {
    mkdirSync(join(stateDir, 'refused'), { recursive: true, mode: 0o700 });
    writeFileDurably(fileOf(stateDir, target), String(now));
  } catch {
    // only a shortcut is lost
  }
}

/** The target answered: forget that it refused. */
export function forgetRefused(stateDir: string, target: Target): void {
  try {
    unlinkSync(fileOf(stateDir, target));
  } catch {
    // nothing noted, or nothing to do
  }
}
