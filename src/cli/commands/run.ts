import { isatty } from 'node:tty';
import { type ChildOutcome, childEnvironment, FORWARDED_SIGNALS, runChild } from '../../adapters/child.js';
import {
  checkMetadataFlags,
  collectMetadata,
  type DeploymentMetadata,
  type MetadataFlags,
} from '../../adapters/metadata/collect.js';
import { newRecordId } from '../../adapters/random-id.js';
import type { Backend } from '../../backends/backend.js';
import { UsageError } from '../../core/errors.js';
import type { DeploymentRecord, Grouping, GroupRecord, Status, StepRecord } from '../../core/record.js';
import { parseLabelValue, parseSeconds } from '../../core/validate.js';
import { noteUnsuccessfulStep } from '../../recorder/state-dir.js';
import type { CommandContext } from '../context.js';
import { requireTarget } from '../settings.js';

export interface RunFlags extends MetadataFlags {
  shell?: boolean;
  killAfter?: string;
}

const DEFAULT_KILL_AFTER_SECONDS = 10;
/** A wrapped command that ends sooner is not marked in progress. */
const MARK_IN_PROGRESS_AFTER_MS = 1000;

function childOptions(flags: RunFlags) {
  const killAfter =
    flags.killAfter === undefined ? DEFAULT_KILL_AFTER_SECONDS : parseSeconds('--kill-after', flags.killAfter);
  return { shell: flags.shell ?? false, killAfterMs: killAfter * 1000 };
}

function requireCommand(command: readonly string[]): void {
  if (command.length === 0 || command[0] === '') {
    throw new UsageError(
      'no command given',
      'put the command after --, e.g. deployctl run --service api --env prod -- ./deploy.sh',
    );
  }
}

/** With --shell, the command is one string for `sh -c`: joining several would make their content shell code. */
function requireOneShellString(command: readonly string[], flags: RunFlags): void {
  if (flags.shell && command.length > 1) {
    throw new UsageError(
      `--shell takes the command as exactly one string, not ${command.length} arguments`,
      `quote the whole command, e.g. deployctl run --shell --service api --env prod -- './deploy.sh && ./smoke.sh'`,
    );
  }
}

/** Everything on the command line of `run`, checked before anything else is read or started. */
export function checkRunLine(command: readonly string[], flags: RunFlags): void {
  requireCommand(command);
  requireOneShellString(command, flags);
  childOptions(flags);
  checkMetadataFlags(flags);
}

/** Everything on the command line of `step`, checked before anything else is read or started. */
export function checkStepLine(name: string, command: readonly string[], flags: RunFlags): void {
  parseLabelValue('the step name', name);
  requireCommand(command);
  requireOneShellString(command, flags);
  childOptions(flags);
}

function statusOf(outcome: ChildOutcome): Status {
  if (outcome.cancelledBy) return 'cancelled';
  return outcome.exitCode === 0 ? 'success' : 'failure';
}

const shellQuote = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`);

/** The command as it would be started, for --dry-run. */
function shownCommand(command: readonly string[], shell: boolean): string {
  return shell ? `sh -c ${shellQuote(command.join(' '))}` : command.map(shellQuote).join(' ');
}

/**
 * Runs the command; `context` is undefined when deployctl's surroundings (config file,
 * environment) are unusable: the command then runs all the same, and nothing is recorded.
 */
async function runWrapped(
  command: string[],
  flags: RunFlags,
  context: CommandContext | undefined,
  onSpawn?: () => void,
): Promise<ChildOutcome> {
  const env = context?.env ?? process.env;
  const outcome = await runChild(command, {
    ...childOptions(flags),
    env: childEnvironment(env),
    // isatty(0), not process.stdin.isTTY: the command inherits fd 0, deployctl never reads it.
    interactive: isatty(0),
    onSpawn: () => {
      onSpawn?.();
      // What records the command is loaded while it runs (on another core), not after it ends.
      if (context) void import('../send-record.js');
    },
  });
  if (outcome.startError) {
    const reporter =
      context?.reporter ??
      (await import('../render/output.js')).consoleReporter(
        { json: false, quiet: false, verbose: false },
        process.env,
        {
          besideCommand: true,
        },
      );
    reporter.error(`${outcome.startError}; nothing recorded`);
  }
  return outcome;
}

const ignoreSignal = () => undefined;
let holdingSignals = false;

/**
 * From the moment deployctl runs a command until it exits, SIGINT, SIGTERM and SIGHUP never take
 * Node's default action (dying with 128+N): the command's own handlers pass them on while it runs,
 * and once it has ended none may change the exit code. This listener stays until the process exits.
 */
function holdSignalsUntilExit(): void {
  if (holdingSignals) return;
  holdingSignals = true;
  for (const signal of FORWARDED_SIGNALS) process.on(signal, ignoreSignal);
}

/**
 * Makes and sends the record once the command has ended. A signal (SIGINT, SIGTERM, SIGHUP) from
 * then on, while the record is made (`make` is given a promise the first signal settles) or sent,
 * ends the wait once the record is on disk: it is kept and sent by the next command.
 */
async function recordAfterCommand(
  context: CommandContext,
  grouping: Grouping,
  make: (signalled: Promise<void>) => Promise<GroupRecord>,
): Promise<void> {
  let durable = false;
  let kept = false;
  let wake: (() => void) | undefined;
  let firstSignal: (() => void) | undefined;
  let signalled = false;
  const interrupted = new Promise<void>((resolve) => {
    wake = resolve;
  });
  const anySignal = new Promise<void>((resolve) => {
    firstSignal = resolve;
  });
  const onSignal = () => {
    signalled = true;
    firstSignal?.();
    if (durable) wake?.();
  };
  for (const signal of FORWARDED_SIGNALS) process.on(signal, onSignal);
  try {
    const [record, { sendRecord }] = await Promise.all([make(anySignal), import('../send-record.js')]);
    await Promise.race([
      sendRecord(context, grouping, record, {
        onDurable: (onDisk) => {
          durable = true;
          kept = onDisk;
          if (signalled) wake?.();
        },
      }),
      interrupted,
    ]);
    if (signalled) {
      context.reporter.warn(
        kept
          ? 'interrupted while recording; the record is kept and sent by the next deployctl command (or deployctl flush)'
          : 'interrupted while recording, and the record could not be kept on disk: it may not have reached the gateway',
      );
    }
  } catch (error) {
    context.reporter.warn(`not recorded: unexpected error: ${(error as Error).message}`);
  } finally {
    for (const signal of FORWARDED_SIGNALS) process.off(signal, onSignal);
  }
}

/**
 * `deployctl run -- COMMAND`: runs the deploy, then records it. Only deployctl's own command line
 * can stop the command from starting (checked by the CLI before this); afterwards deployctl
 * exits as the command did (128+N when deployctl passed on signal N), whatever happens to the metrics.
 */
export async function runCommand(
  command: string[],
  flags: RunFlags,
  context: CommandContext | undefined,
): Promise<number> {
  holdSignalsUntilExit();
  if (!context) return (await runWrapped(command, flags, undefined)).exitCode;
  const { settings, env, cwd, now } = context;
  const grouping = { job: settings.job, ...requireTarget(settings) };

  if (settings.dryRun) {
    context.reporter.aside(`would run: ${shownCommand(command, flags.shell ?? false)}`);
    const metadata = await collectMetadata(flags, env, cwd).catch(() => ({ version: '', commit: '' }));
    const record: DeploymentRecord = {
      kind: 'deployment',
      id: newRecordId(),
      status: 'success',
      labels: settings.labels,
      finishedAt: now(),
      timeFromClock: true,
      ...metadata,
    };
    context.reporter.aside('and, if it succeeds:');
    const { sendRecord } = await import('../send-record.js');
    await sendRecord(context, grouping, record);
    return 0;
  }

  // The commit is read as the deploy starts (a deploy script may move HEAD), alongside the command;
  // the in-progress mark is sent once the command has run for a second (a mark over before any
  // scrape could see it would only delay the record). Neither may delay or fail the deploy.
  const metadata: Promise<DeploymentMetadata | Error> = collectMetadata(
    flags,
    env,
    cwd,
    context.reporter.warn,
    context.reporter.note,
  ).catch((error: Error) => error);
  let inProgress: Promise<void> = Promise.resolve();
  let markTimer: NodeJS.Timeout | undefined;
  const outcome = await runWrapped(command, flags, context, () => {
    const startedAt = now();
    markTimer = setTimeout(() => {
      inProgress = markInProgress(context, grouping, startedAt);
    }, MARK_IN_PROGRESS_AFTER_MS);
  });
  clearTimeout(markTimer);
  if (outcome.startError) return outcome.exitCode;

  // A signal while the in-progress mark or the metadata is still awaited stops the wait for them.
  await recordAfterCommand(context, grouping, async (signalled) => {
    const finishedAt = now();
    await Promise.race([inProgress, signalled]);
    const collected = await Promise.race([
      metadata,
      signalled.then(() => new Error('interrupted before they were read')),
    ]);
    if (collected instanceof Error) context.reporter.warn(`version and commit unknown: ${collected.message}`);
    const record: DeploymentRecord = {
      kind: 'deployment',
      id: newRecordId(),
      status: statusOf(outcome),
      labels: settings.labels,
      finishedAt,
      timeFromClock: true,
      durationSeconds: outcome.durationSeconds,
      ...(collected instanceof Error ? { version: '', commit: '' } : collected),
    };
    return record;
  });
  return outcome.exitCode;
}

/** Marks the deployment in progress while the command runs; best effort, never kept for later. */
async function markInProgress(
  { destination, reporter }: CommandContext,
  grouping: Grouping,
  startedAt: number,
): Promise<void> {
  let backend: Backend | undefined;
  try {
    const [{ openBackend }, { withGroupLock }] = await Promise.all([
      import('../../backends/index.js'),
      import('../../recorder/lock.js'),
    ]);
    backend = await openBackend(destination, reporter, { timeoutSeconds: 2 });
    const remaining = backend.remainingMs();
    await withGroupLock(destination.stateDir, grouping, remaining, () => backend!.markInProgress(grouping, startedAt));
  } catch (error) {
    reporter.debug(`could not mark the deployment in progress: ${(error as Error).message}`);
  } finally {
    backend?.close();
  }
}

/** For `finish` without --status; a state directory that cannot be written only costs that. */
async function noteStepForFinish(
  stateDir: string,
  grouping: Grouping,
  step: string,
  status: Exclude<Status, 'success'>,
  { reporter }: CommandContext,
): Promise<void> {
  try {
    await noteUnsuccessfulStep(stateDir, grouping, step, status);
  } catch (error) {
    reporter.warn(
      `could not note the ${status} of step ${JSON.stringify(step)} for finish: ${(error as Error).message}; give finish --status`,
    );
  }
}

/** `deployctl step NAME -- COMMAND`: one timed step of the current deployment. */
export async function stepCommand(
  name: string,
  command: string[],
  flags: RunFlags,
  context: CommandContext | undefined,
): Promise<number> {
  holdSignalsUntilExit();
  if (!context) return (await runWrapped(command, flags, undefined)).exitCode;
  const { settings, now } = context;
  const grouping = { job: settings.job, ...requireTarget(settings) };
  const step = parseLabelValue('the step name', name);
  const record = (status: Status, durationSeconds: number): StepRecord => ({
    kind: 'step',
    id: newRecordId(),
    step,
    status,
    finishedAt: now(),
    timeFromClock: true,
    durationSeconds,
  });

  if (settings.dryRun) {
    context.reporter.aside(`would run: ${shownCommand(command, flags.shell ?? false)}`);
    context.reporter.aside('and, if it succeeds:');
    const { sendRecord } = await import('../send-record.js');
    await sendRecord(context, grouping, record('success', 0));
    return 0;
  }
  const outcome = await runWrapped(command, flags, context);
  if (outcome.startError) return outcome.exitCode;
  const status = statusOf(outcome);
  await recordAfterCommand(context, grouping, async () => {
    if (status !== 'success') await noteStepForFinish(settings.stateDir, grouping, step, status, context);
    return record(status, outcome.durationSeconds);
  });
  return outcome.exitCode;
}
