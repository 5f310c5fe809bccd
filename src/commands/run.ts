import { randomUUID } from 'node:crypto';
import { runChild, type ChildOutcome } from '../child.js';
import type { CommandContext } from '../context.js';
import { UsageError } from '../errors.js';
import { checkMetadataFlags, collectMetadata, type MetadataFlags } from '../metadata/collect.js';
import type { DeploymentRecord, StepRecord } from '../metrics/apply.js';
import { deliver, openGateway } from '../deliver.js';
import { withGroupLock } from '../lock.js';
import type { Grouping } from '../gateway/group-state.js';
import { sendRecord } from '../send.js';
import { requireTarget } from '../settings.js';
import type { Status } from '../validate.js';
import { parseLabelValue, parseSeconds } from '../validate.js';

export interface RunFlags extends MetadataFlags {
  shell?: boolean;
  killAfter?: string;
}

export const DEFAULT_KILL_AFTER_SECONDS = 10;

function childOptions(flags: RunFlags) {
  const killAfter = flags.killAfter === undefined ? DEFAULT_KILL_AFTER_SECONDS : parseSeconds('--kill-after', flags.killAfter);
  return { shell: flags.shell ?? false, killAfterMs: killAfter * 1000 };
}

function requireCommand(command: readonly string[]): void {
  if (command.length === 0 || command[0] === '') {
    throw new UsageError('no command given', 'put the command after --, e.g. deployctl run --service api --env prod -- ./deploy.sh');
  }
}

export function statusOf(outcome: ChildOutcome): Status {
  if (outcome.cancelledBy) return 'cancelled';
  return outcome.exitCode === 0 ? 'success' : 'failure';
}

function reportStartError(outcome: ChildOutcome): void {
  if (outcome.startError) process.stderr.write(`deployctl: ${outcome.startError}\n`);
}

/**
 * `deployctl run -- COMMAND`: runs the deploy, then records it. Everything that can be refused is
 * checked before the command starts; afterwards deployctl exits as the command did, whatever
 * happens to the metrics.
 */
export async function runCommand(command: string[], flags: RunFlags, context: CommandContext): Promise<number> {
  const { settings, env, cwd, now } = context;
  const target = requireTarget(settings);
  requireCommand(command);
  checkMetadataFlags(flags);
  const options = childOptions(flags);

  const grouping = { job: settings.job, ...target };
  // The commit is read as the deploy starts (a deploy script may move HEAD), alongside the command,
  // and so is the in-progress mark: neither may delay or fail the deploy.
  const metadata = collectMetadata(flags, env, cwd);
  const inProgress = settings.dryRun ? Promise.resolve() : settings.remoteWrite ? import('../backends/remote-write/send.js').then((rw) => rw.markStarted(context, grouping, now())) : markInProgress(context, grouping, now());
  const outcome = await runChild(command, options);
  reportStartError(outcome);
  await inProgress;

  const record: DeploymentRecord = {
    kind: 'deployment',
    id: randomUUID(),
    status: statusOf(outcome),
    labels: settings.labels,
    finishedAt: now(),
    durationSeconds: outcome.durationSeconds,
    ...(await metadata),
  };
  await sendRecord(context, grouping, record, { toStderr: true });
  return outcome.exitCode;
}

/** Marks the deployment in progress while the command runs; best effort, never kept for later. */
async function markInProgress({ settings, reporter, now }: CommandContext, grouping: Grouping, startedAt: number): Promise<void> {
  const gateway = openGateway(settings, reporter, 2);
  try {
    await withGroupLock(settings.stateDir, grouping, gateway.remainingMs(), () =>
      deliver(gateway, grouping, { kind: 'start', id: randomUUID(), startedAt }, { dryRun: false, now }),
    );
  } catch (error) {
    reporter.debug(`could not mark the deployment in progress: ${(error as Error).message}`);
  } finally {
    gateway.close();
  }
}

/** `deployctl step NAME -- COMMAND`: one timed step of the current deployment. */
export async function stepCommand(name: string, command: string[], flags: RunFlags, context: CommandContext): Promise<number> {
  const { settings, now } = context;
  const step = parseLabelValue('the step name', name);
  const target = requireTarget(settings);
  requireCommand(command);
  const outcome = await runChild(command, childOptions(flags));
  reportStartError(outcome);

  const record: StepRecord = {
    kind: 'step',
    id: randomUUID(),
    step,
    status: statusOf(outcome),
    finishedAt: now(),
    durationSeconds: outcome.durationSeconds,
  };
  await sendRecord(context, { job: settings.job, ...target }, record, { toStderr: true });
  return outcome.exitCode;
}
