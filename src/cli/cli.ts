import { Command, CommanderError, Option } from 'commander';
import { DeployctlError, ExitCode, SettingsError, UsageError } from '../core/errors.js';
import type { CommandContext } from './context.js';
import type { GlobalFlags } from './settings.js';

declare const __DEPLOYCTL_VERSION__: string;
const VERSION = typeof __DEPLOYCTL_VERSION__ === 'string' ? __DEPLOYCTL_VERSION__ : '0.0.0-dev';

type Action = (context: CommandContext) => Promise<number>;
/** `run` and `step` get no context when deployctl's surroundings are unusable: the command runs unrecorded. */
type WrapAction = (context: CommandContext | undefined) => Promise<number>;

/**
 * How a command meets problems: `read` commands (status, doctor, …) stop with exit 2; `record`
 * commands warn "not recorded" and exit 0; `wrap` commands (run, step) warn and run the command.
 * `--strict` makes the last two exit 2. `check` validates the command line before anything else.
 */
export type CommandSpec = { kind: 'read' } | { kind: 'record'; check?: () => void } | { kind: 'wrap'; check: () => void };
export type Runner = {
  (flags: GlobalFlags, action: Action, spec?: { kind: 'read' } | { kind: 'record'; check?: () => void }): Promise<void>;
  (flags: GlobalFlags, action: WrapAction, spec: { kind: 'wrap'; check: () => void }): Promise<void>;
};

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** The options every command takes. */
function withGlobalOptions(command: Command): Command {
  return command
    .option('--pushgateway <url>', 'Pushgateway URL (env DEPLOYCTL_PUSHGATEWAY_URL; default http://localhost:9091)')
    .option('--remote-write <url>', 'Prometheus remote-write URL, instead of the Pushgateway (env DEPLOYCTL_REMOTE_WRITE_URL)')
    .option('--prometheus <url>', 'Prometheus query API: for dora, status and reads on remote-write (env DEPLOYCTL_PROMETHEUS_URL)')
    .option('--job <name>', 'job label of the group (default deployctl)')
    .option('--config <path>', 'config file (default: search for .deployctlrc*, deployctl.config.*, package.json "deployctl")')
    .option('--dry-run', 'start, send, write and delete nothing; print what would be done')
    .option('--json', 'machine-readable output on stdout')
    .option('-q, --quiet', 'print only warnings and errors')
    .option('-v, --verbose', 'print each request to the gateway on stderr')
    .option('--strict', 'exit non-zero when the metrics cannot be pushed')
    .option('--timeout <seconds>', 'total time to spend talking to the gateway (default 5)')
    .option('--header <"Name: value">', 'extra HTTP header for the gateway (repeatable)', collect)
    .option('--ca-file <path>', 'CA certificate(s) to trust for an https gateway')
    .option('--cert-file <path>', 'client certificate for an https gateway')
    .option('--key-file <path>', 'key of the client certificate')
    .option('--insecure', 'do not verify the gateway\'s TLS certificate');
}

function withTarget(command: Command): Command {
  return command
    .option('-s, --service <name>', 'service deployed (env DEPLOYCTL_SERVICE)')
    .option('-e, --env <name>', 'environment deployed to (env DEPLOYCTL_ENV; --environment also works)')
    .addOption(new Option('--environment <name>').hideHelp())
    .option('-l, --label <key=value>', 'extra label on the deployment metrics (repeatable)', collect);
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  now?: () => number;
}

export function buildProgram(run: Runner): Command {
  const program = new Command('deployctl')
    .description('Record deployments and DORA metrics to a Prometheus Pushgateway')
    .version(VERSION, '-V, --version', 'print the deployctl version')
    .enablePositionalOptions()
    .showHelpAfterError('(run deployctl --help for the commands)')
    .exitOverride();

  const metadataOptions = (command: Command) =>
    command
      .option('--version <version>', 'version deployed (default: git describe --tags, else the commit)')
      .option('--commit <sha>', 'commit deployed (default: from CI, else git HEAD)')
      .option('--commit-time <time>', "the deployed commit's time, for lead time (default: from git)")
      .option('--branch <name>', 'branch deployed (default: from CI)')
      .option('--repository <name>', 'repository (default: from CI)')
      .option('--build-url <url>', 'CI build URL (default: from CI)');
  const statusOption = () => new Option('--status <status>', 'how it ended').choices(['success', 'failure', 'cancelled']);
  const childOptions = (command: Command) =>
    command
      .option('--shell', 'run the command through a shell')
      .option('--kill-after <seconds>', 'kill the command this long after passing on a signal (default 10)');

  const record = program.command('record').description('record one finished deployment').addOption(statusOption());
  metadataOptions(record)
    .option('--duration <seconds>', 'how long it took')
    .option('--started-at <time>', 'when it started (Unix seconds or ISO 8601)')
    .option('--finished-at <time>', 'when it finished (default: now)');
  withGlobalOptions(withTarget(record)).action(async (flags) => {
    const { recordCommand } = await import('./commands/record.js');
    await run(flags, (context) => recordCommand(flags, context), { kind: 'record' });
  });

  const runCmd = program
    .command('run')
    .description('run a deploy command and record it; exits with the command\'s exit code')
    .argument('[command...]', 'the deploy command and its arguments, after --');
  // Options after the command belong to it: `deployctl run -s api -e prod ./deploy.sh --force`.
  withGlobalOptions(withTarget(childOptions(metadataOptions(runCmd)))).passThroughOptions().action(async (command: string[], flags) => {
    const { runCommand, checkRunLine } = await import('./commands/run.js');
    await run(flags, (context) => runCommand(command, flags, context), { kind: 'wrap', check: () => checkRunLine(command, flags) });
  });

  const step = program
    .command('step')
    .description('run and time one step of a deployment')
    .argument('<name>', 'the step name')
    .argument('[command...]', 'the command and its arguments, after --');
  withGlobalOptions(withTarget(childOptions(step))).action(async (name: string, command: string[], flags) => {
    const { stepCommand, checkStepLine } = await import('./commands/run.js');
    await run(flags, (context) => stepCommand(name, command, flags, context), { kind: 'wrap', check: () => checkStepLine(name, command, flags) });
  });

  const start = program.command('start').description('mark a deployment in progress (closed by finish)');
  metadataOptions(start).option('--started-at <time>', 'when it started (default: now)');
  withGlobalOptions(withTarget(start)).action(async (flags) => {
    const { startCommand } = await import('./commands/start-finish.js');
    await run(flags, (context) => startCommand(flags, context), { kind: 'record' });
  });

  const finish = program.command('finish').description('record the deployment that start opened').addOption(statusOption());
  metadataOptions(finish)
    .option('--started-at <time>', 'when it started (default: from start)')
    .option('--finished-at <time>', 'when it finished (default: now)');
  withGlobalOptions(withTarget(finish)).action(async (flags) => {
    const { finishCommand } = await import('./commands/start-finish.js');
    await run(flags, (context) => finishCommand(flags, context), { kind: 'record' });
  });

  withGlobalOptions(withTarget(program.command('status').description('the latest deployment of each service and environment on the gateway'))).action(async (flags) => {
    const { statusCommand } = await import('./commands/status.js');
    await run(flags, (context) => statusCommand(context));
  });

  withGlobalOptions(withTarget(program.command('delete').description('remove a retired service/environment group from the gateway').option('-y, --yes', 'do not ask for confirmation'))).action(
    async (flags) => {
      const { deleteCommand } = await import('./commands/delete.js');
      await run(flags, (context) => deleteCommand(flags, context));
    },
  );

  withGlobalOptions(withTarget(program.command('doctor').description('check config, gateway and Prometheus; show what a record would push'))).action(
    async (flags) => {
      const { doctorCommand } = await import('./commands/doctor.js');
      await run(flags, (context) => doctorCommand(flags, context));
    },
  );

  withGlobalOptions(
    withTarget(
      program
        .command('dora')
        .description('the four DORA keys per service and environment, from Prometheus')
        .option('--window <duration>', 'how far back, as a PromQL duration (default 30d)'),
    ),
  ).action(async (flags) => {
    const { doraCommand } = await import('./commands/dora.js');
    await run(flags, (context) => doraCommand(flags, context));
  });

  withGlobalOptions(program.command('flush').description('send the records kept while the gateway was unreachable')).action(async (flags) => {
    const { flushCommand } = await import('./commands/flush.js');
    await run(flags, (context) => flushCommand(context));
  });

  for (const command of program.commands) command.showHelpAfterError(`(run deployctl ${command.name()} --help for its options)`);
  return program;
}

/** --strict as far as it can be known when the config or environment is unusable. */
function strictAnyway(flags: GlobalFlags, env: Record<string, string | undefined>): boolean {
  return Boolean(flags.strict) || /^(1|true|yes)$/i.test(env.DEPLOYCTL_STRICT ?? '');
}

/** The one place that turns errors into messages and exit codes. */
export async function main(argv: string[], options: RunOptions = {}): Promise<number> {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const now = options.now ?? (() => Date.now() / 1000);
  let exitCode: number = ExitCode.ok;
  let verbose = argv.includes('--verbose') || argv.includes('-v');
  const warn = (message: string) => process.stderr.write(`deployctl: warning: ${message}\n`);
  /** Says a record was not made; under --json also as the one JSON document (stderr when a command owns stdout). */
  const notRecorded = (error: unknown, flags: GlobalFlags, spec: CommandSpec) => {
    const err = error as Error & { hint?: string };
    const message = `${error instanceof DeployctlError ? '' : 'unexpected error: '}${err.message}`;
    warn(`not recorded: ${message}`);
    if (err.hint) warn(err.hint);
    if (!(error instanceof DeployctlError) && (verbose || env.DEBUG)) process.stderr.write(`${err.stack}\n`);
    if (flags.json) (spec.kind === 'wrap' ? process.stderr : process.stdout).write(`${JSON.stringify({ recorded: false, error: message })}\n`);
  };

  const program = buildProgram((async (flags: GlobalFlags, action: WrapAction, spec: CommandSpec = { kind: 'read' }) => {
    verbose = flags.verbose ?? false;
    if (flags.environment !== undefined) flags.env ??= flags.environment;
    if (spec.kind !== 'read') spec.check?.();
    let context: CommandContext;
    try {
      const [{ resolveSettings, requireTarget }, { consoleReporter }] = await Promise.all([import('./settings.js'), import('./output.js')]);
      const settings = await resolveSettings(flags, env, cwd);
      const reporter = consoleReporter(settings, env);
      for (const warning of settings.warnings) reporter.warn(warning);
      if (spec.kind !== 'read') requireTarget(settings);
      context = { settings, reporter, now, env, cwd };
    } catch (error) {
      if (spec.kind === 'read' || !(error instanceof SettingsError) || strictAnyway(flags, env)) throw error;
      notRecorded(error, flags, spec);
      exitCode = spec.kind === 'wrap' ? await action(undefined) : ExitCode.ok;
      return;
    }
    if (spec.kind !== 'record') {
      exitCode = await action(context);
      return;
    }
    try {
      exitCode = await action(context);
    } catch (error) {
      // Only the command line stops a record with exit 2; anything else is a warning.
      if (error instanceof UsageError && !(error instanceof SettingsError)) throw error;
      if (error instanceof SettingsError && context.settings.strict) throw error;
      notRecorded(error, flags, spec);
      exitCode = context.settings.strict ? ExitCode.failure : ExitCode.ok;
    }
  }) as Runner);

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version end here with code 0; commander has already printed any usage error.
      return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    // Under --json the answer is one JSON document, also when it is an error (stderr for run and step,
    // whose stdout is the command's).
    const jsonError = (message: string, code: number) => {
      if (!argv.includes('--json')) return;
      const wraps = argv[0] === 'run' || argv[0] === 'step';
      (wraps ? process.stderr : process.stdout).write(`${JSON.stringify({ error: message, exitCode: code })}\n`);
    };
    if (error instanceof DeployctlError) {
      process.stderr.write(`deployctl: ${error.message}\n`);
      if (error.hint) process.stderr.write(`  ${error.hint}\n`);
      jsonError(error.message, error.exitCode);
      return error.exitCode;
    }
    const err = error as Error;
    process.stderr.write(`deployctl: unexpected error: ${err.message}\n`);
    if (verbose || env.DEBUG) process.stderr.write(`${err.stack}\n`);
    jsonError(`unexpected error: ${err.message}`, ExitCode.failure);
    return ExitCode.failure;
  }
}
