import { DeployctlError, ExitCode, SettingsError, UsageError } from '../core/errors.js';
import type { DoraFlags } from './commands/dora.js';
import type { IncidentFlags } from './commands/incident.js';
import type { OutboxFlags } from './commands/outbox.js';
import type { RecordFlags } from './commands/record.js';
import type { RunFlags } from './commands/run.js';
import type { FinishFlags, StartFlags } from './commands/start-finish.js';
import type { VerifyFlags } from './commands/verify.js';
import type { CommandContext } from './context.js';
import { hoistGlobalOptions, type Invocation, parseQuick } from './options.js';
import type { ReadingView } from './render/reading.js';
import type { GlobalFlags } from './settings.js';

type Action = (context: CommandContext) => Promise<number>;
/** `run` and `step` get no context when deployctl's surroundings are unusable: the command runs unrecorded. */
type WrapAction = (context: CommandContext | undefined) => Promise<number>;

/**
 * How a command meets a bad config or environment: `read` commands (status, dora, doctor, delete)
 * stop with exit 2; `record` commands (record, start, finish, flush) warn "not recorded" and exit 0; `wrap` commands (run, step) warn and
 * run the command. `--strict` makes the last two exit 2 as well, before anything runs. (A record
 * that could not be delivered is another matter: send-record.ts.) `check` validates the command
 * line before anything else.
 */
export type ProblemHandling = { kind: 'read' } | RecordHandling | { kind: 'wrap'; check: () => void };
/**
 * `anyTarget`: the records name their own service and environment (incident --from-alertmanager);
 * `flush` records no deployment of its own: it needs no service or environment, and says "not flushed".
 */
type RecordHandling = { kind: 'record'; check?: () => void; anyTarget?: boolean; flush?: boolean };
export type Runner = {
  (flags: GlobalFlags, action: Action, spec?: { kind: 'read' } | RecordHandling): Promise<void>;
  (flags: GlobalFlags, action: WrapAction, spec: { kind: 'wrap'; check: () => void }): Promise<void>;
};

type AnyFlags = GlobalFlags &
  RecordFlags &
  RunFlags &
  StartFlags &
  FinishFlags &
  DoraFlags &
  VerifyFlags &
  IncidentFlags &
  OutboxFlags & { yes?: boolean };

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  now?: () => number;
}

/** What a reading command found, shown by the one renderer of reading commands; its exit code. */
async function show(view: ReadingView, { settings, reporter, now }: CommandContext): Promise<number> {
  const { renderReading } = await import('./render/reading.js');
  return renderReading(view, settings, reporter, now());
}

/** Runs a parsed command line: each command's module is loaded only when it runs. */
async function execute({ command, operands, flags: given }: Invocation, run: Runner): Promise<void> {
  const flags = given as AnyFlags;
  switch (command) {
    case 'record': {
      const { recordCommand } = await import('./commands/record.js');
      return run(flags, (context) => recordCommand(flags, context), { kind: 'record' });
    }
    case 'run': {
      const { runCommand, checkRunLine } = await import('./commands/run.js');
      return run(flags, (context) => runCommand(operands, flags, context), {
        kind: 'wrap',
        check: () => checkRunLine(operands, flags),
      });
    }
    case 'step': {
      const { stepCommand, checkStepLine } = await import('./commands/run.js');
      const [name = '', ...rest] = operands;
      return run(flags, (context) => stepCommand(name, rest, flags, context), {
        kind: 'wrap',
        check: () => checkStepLine(name, rest, flags),
      });
    }
    case 'start': {
      const { startCommand } = await import('./commands/start-finish.js');
      return run(flags, (context) => startCommand(flags, context), { kind: 'record' });
    }
    case 'finish': {
      const { finishCommand } = await import('./commands/start-finish.js');
      return run(flags, (context) => finishCommand(flags, context), { kind: 'record' });
    }
    case 'status': {
      const { statusCommand } = await import('./commands/status.js');
      return run(flags, async (context) => show(await statusCommand(context), context));
    }
    case 'delete': {
      const { deleteCommand } = await import('./commands/delete.js');
      return run(flags, async (context) => show(await deleteCommand(flags, context), context));
    }
    case 'doctor': {
      const { doctorCommand } = await import('./commands/doctor.js');
      return run(flags, async (context) => show(await doctorCommand(context), context));
    }
    case 'dora': {
      const { doraCommand } = await import('./commands/dora.js');
      return run(flags, async (context) => show(await doraCommand(flags, context), context));
    }
    case 'verify': {
      const { verifyCommand, checkVerifyLine } = await import('./commands/verify.js');
      checkVerifyLine(flags);
      return run(flags, async (context) => {
        const { view, recording, exitCode } = await verifyCommand(flags, context);
        if (exitCode !== ExitCode.interrupted) {
          const { renderVerify } = await import('./render/verify.js');
          renderVerify(view, context.settings, context.reporter, recording);
        }
        return exitCode;
      });
    }
    case 'flush': {
      const { flushCommand } = await import('./commands/flush.js');
      return run(flags, (context) => flushCommand(context), { kind: 'record', flush: true });
    }
    case 'incident': {
      const { incidentCommand, checkIncidentLine } = await import('./commands/incident.js');
      const line = await checkIncidentLine(operands, flags);
      return run(flags, (context) => incidentCommand(line, flags, context), {
        kind: 'record',
        anyTarget: line.kind === 'alertmanager',
      });
    }
    case 'outbox': {
      const { outboxCommand } = await import('./commands/outbox.js');
      return run(flags, async (context) => {
        const view = await outboxCommand(operands[0] ?? 'list', flags, context);
        const { renderOutboxView } = await import('./render/output.js');
        return renderOutboxView(view, context.settings, context.reporter);
      });
    }
  }
}

/** --strict as far as it can be known when the config or environment is unusable. */
function strictAnyway(flags: GlobalFlags, env: Record<string, string | undefined>): boolean {
  return Boolean(flags.strict) || /^(1|true|yes)$/i.test(env.DEPLOYCTL_STRICT ?? '');
}

/** The one place that turns errors into messages and exit codes. */
export async function main(given: string[], options: RunOptions = {}): Promise<number> {
  // `deployctl --config X record`: the options every command takes may come before it.
  const argv = hoistGlobalOptions(given);
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const now = options.now ?? (() => Date.now() / 1000);
  let exitCode: number = ExitCode.ok;
  let verbose = argv.includes('--verbose') || argv.includes('-v');
  const json = argv.includes('--json');
  /** A reporter for what is said before (or without) the command's own: errors and records not made. */
  const bareReporter = async (flags: { quiet?: boolean }, besideCommand: boolean) =>
    (await import('./render/output.js')).consoleReporter({ json, quiet: flags.quiet ?? false, verbose }, env, {
      besideCommand,
    });
  /** Says a record was not made; under --json also as the one JSON document (stderr when a command owns stdout). */
  const notRecorded = async (error: unknown, flags: GlobalFlags, spec: ProblemHandling) => {
    const { renderNotRecorded } = await import('./render/output.js');
    renderNotRecorded(
      error,
      { json: Boolean(flags.json), stack: verbose || Boolean(env.DEBUG) },
      await bareReporter({}, spec.kind === 'wrap'),
      spec.kind === 'record' && spec.flush ? 'not flushed' : 'not recorded',
    );
  };

  const run = (async (flags: GlobalFlags, action: WrapAction, spec: ProblemHandling = { kind: 'read' }) => {
    verbose = flags.verbose ?? false;
    if (flags.environment !== undefined) flags.env ??= flags.environment;
    if (spec.kind !== 'read') spec.check?.();
    let context: CommandContext;
    try {
      const [{ resolveSettings, requireTarget, destinationOf }, { consoleReporter }] = await Promise.all([
        import('./settings.js'),
        import('./render/output.js'),
      ]);
      const settings = await resolveSettings(flags, env, cwd);
      const reporter = consoleReporter(settings, env, { besideCommand: spec.kind === 'wrap' });
      for (const warning of settings.warnings) reporter.warn(warning);
      if (spec.kind === 'wrap' || (spec.kind === 'record' && !spec.anyTarget && !spec.flush)) requireTarget(settings);
      context = { settings, destination: destinationOf(settings), reporter, now, env, cwd };
    } catch (error) {
      if (spec.kind === 'read' || !(error instanceof SettingsError) || strictAnyway(flags, env)) throw error;
      await notRecorded(error, flags, spec);
      exitCode = spec.kind === 'wrap' ? await action(undefined) : ExitCode.ok;
      return;
    }
    if (spec.kind !== 'record' || spec.flush) {
      exitCode = await action(context);
      return;
    }
    try {
      exitCode = await action(context);
    } catch (error) {
      // Only the command line stops a record with exit 2; anything else is a warning.
      if (error instanceof UsageError && !(error instanceof SettingsError)) throw error;
      if (error instanceof SettingsError && context.settings.strict) throw error;
      await notRecorded(error, flags, spec);
      exitCode = context.settings.strict ? ExitCode.failure : ExitCode.ok;
    }
  }) as Runner;

  try {
    // The everyday lines of the recording commands skip commander; anything else, help and
    // mistakes included, goes through it.
    const quick = parseQuick(argv);
    if (quick) await execute(quick, run);
    else {
      const { buildProgram } = await import('./program.js');
      await buildProgram((invocation) => execute(invocation, run)).parseAsync(argv, { from: 'user' });
    }
    return exitCode;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('commander.')) {
      // Help and --version end here with code 0; commander has already printed any usage error.
      return (error as { exitCode?: number }).exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    // Under --json the answer is one JSON document, also when it is an error (stderr for run and step,
    // whose stdout is the command's).
    const exit = error instanceof DeployctlError ? error.exitCode : ExitCode.failure;
    const { renderError } = await import('./render/output.js');
    renderError(
      error,
      exit,
      { json, stack: verbose || Boolean(env.DEBUG) },
      await bareReporter({}, argv[0] === 'run' || argv[0] === 'step'),
    );
    return exit;
  }
}
