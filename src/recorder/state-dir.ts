// Tests name groups' files through here.
export { groupFileName } from '../core/record.js';

import { readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { writeFileDurably } from '../adapters/durable-file.js';
import { type Grouping, groupFileName, type Status } from '../core/record.js';

/** `DEPLOYCTL_STATE_DIR`, else `$XDG_STATE_HOME/deployctl`, else `~/.local/state/deployctl`. */
export function defaultStateDir(env: Record<string, string | undefined>): string {
  if (env.DEPLOYCTL_STATE_DIR) return env.DEPLOYCTL_STATE_DIR;
  const base = env.XDG_STATE_HOME || join(env.HOME || homedir(), '.local', 'state');
  return join(base, 'deployctl');
}

/** What `deployctl start` leaves for `deployctl finish` on the same machine. */
export interface StartedDeployment {
  grouping: Grouping;
  /** Unix seconds. */
  startedAt: number;
  version?: string;
  commit?: string;
  /** Steps of this deployment that did not succeed, for `finish` without --status. */
  unsuccessfulSteps?: { step: string; status: Exclude<Status, 'success'> }[];
}

function startedPath(stateDir: string, grouping: Grouping): string {
  return join(stateDir, 'started', `${groupFileName(grouping)}.json`);
}

export async function saveStarted(stateDir: string, started: StartedDeployment): Promise<void> {
  writeFileDurably(startedPath(stateDir, started.grouping), `${JSON.stringify(started)}\n`, { makeDir: true });
}

export async function loadStarted(stateDir: string, grouping: Grouping): Promise<StartedDeployment | undefined> {
  try {
    const started = JSON.parse(readFileSync(startedPath(stateDir, grouping), 'utf8')) as StartedDeployment;
    return typeof started.startedAt === 'number' ? started : undefined;
  } catch {
    return undefined;
  }
}

/** Notes a failed or cancelled step in the deployment that `start` opened on this machine, if one is open. */
export async function noteUnsuccessfulStep(
  stateDir: string,
  grouping: Grouping,
  step: string,
  status: Exclude<Status, 'success'>,
): Promise<void> {
  const started = await loadStarted(stateDir, grouping);
  if (!started) return;
  await saveStarted(stateDir, {
    ...started,
    unsuccessfulSteps: [...(started.unsuccessfulSteps ?? []), { step, status }],
  });
}

/**
 * How a deployment ended when `finish` is not told: failure if any of its steps failed, else
 * cancelled if one was cancelled, else success.
 */
export function inferStatus(started: StartedDeployment): { status: Status; because: string } {
  const steps = started.unsuccessfulSteps ?? [];
  const failed = steps.filter((s) => s.status === 'failure').map((s) => JSON.stringify(s.step));
  if (failed.length) return { status: 'failure', because: `step ${failed.join(', ')} failed` };
  const cancelled = steps.filter((s) => s.status === 'cancelled').map((s) => JSON.stringify(s.step));
  if (cancelled.length) return { status: 'cancelled', because: `step ${cancelled.join(', ')} was cancelled` };
  return { status: 'success', because: 'no step of it failed' };
}

export async function clearStarted(stateDir: string, grouping: Grouping): Promise<void> {
  rmSync(startedPath(stateDir, grouping), { force: true });
}
