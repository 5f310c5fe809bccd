import { Command, CommanderError, Option } from 'commander';
import { DeployctlError, ExitCode } from './errors.js';
import type { CommandContext } from './context.js';
import type { GlobalFlags } from './settings.js';

declare const __DEPLOYCTL_VERSION__: string;
const VERSION = typeof __DEPLOYCTL_VERSION__ === 'string' ? __DEPLOYCTL_VERSION__ : '0.0.0-dev';

type Action = (context: CommandContext) => Promise<number>;

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
    .option('--dry-run', 'print the push URL and exposition text, send nothing')
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
    .option('-e, --env <name>', 'environment deployed to (env DEPLOYCTL_ENV)')
    .option('-l, --label <key=value>', 'extra label on the deployment metrics (repeatable)', collect);
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  now?: () => number;
}

export function buildProgram(run: (flags: GlobalFlags, action: Action) => Promise<void>): Command {
  const program = new Command('deployctl')
    .description('Record deployments and DORA metrics to a Prometheus Pushgateway')
    .version(VERSION, '-V, --version', 'print the deployctl version')
    .enablePositionalOptions()
    .showHelpAfterError('(run deployctl <command> --help for its options)')
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
    await run(flags, (context) => recordCommand(flags, context));
  });

  const runCmd = program
    .command('run')
    .description('run a deploy command and record it; exits with the command\'s exit code')
    .argument('[command...]', 'the deploy command and its arguments, after --');
  // Options after the command belong to it: `deployctl run -s api -e prod ./deploy.sh --force`.
  withGlobalOptions(withTarget(childOptions(metadataOptions(runCmd)))).passThroughOptions().action(async (command: string[], flags) => {
    const { runCommand } = await import('./commands/run.js');
    await run(flags, (context) => runCommand(command, flags, context));
  });

  const step = program
    .command('step')
    .description('run and time one step of a deployment')
    .argument('<name>', 'the step name')
    .argument('[command...]', 'the command and its arguments, after --');
  withGlobalOptions(withTarget(childOptions(step))).action(async (name: string, command: string[], flags) => {
    const { stepCommand } = await import('./commands/run.js');
    await run(flags, (context) => stepCommand(name, command, flags, context));
  });

  const start = program.command('start').description('mark a deployment in progress (closed by finish)');
  metadataOptions(start).option('--started-at <time>', 'when it started (default: now)');
  withGlobalOptions(withTarget(start)).action(async (flags) => {
    const { startCommand } = await import('./commands/start-finish.js');
    await run(flags, (context) => startCommand(flags, context));
  });

  const finish = program.command('finish').description('record the deployment that start opened').addOption(statusOption());
  metadataOptions(finish)
    .option('--started-at <time>', 'when it started (default: from start)')
    .option('--finished-at <time>', 'when it finished (default: now)');
  withGlobalOptions(withTarget(finish)).action(async (flags) => {
    const { finishCommand } = await import('./commands/start-finish.js');
    await run(flags, (context) => finishCommand(flags, context));
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

  return program;
}

/** The one place that turns errors into messages and exit codes. */
export async function main(argv: string[], options: RunOptions = {}): Promise<number> {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const now = options.now ?? (() => Date.now() / 1000);
  let exitCode: number = ExitCode.ok;
  let verbose = argv.includes('--verbose') || argv.includes('-v');

  const program = buildProgram(async (flags, action) => {
    verbose = flags.verbose ?? false;
    const [{ resolveSettings }, { consoleReporter }] = await Promise.all([import('./settings.js'), import('./output.js')]);
    const settings = await resolveSettings(flags, env, cwd);
    const reporter = consoleReporter(settings);
    exitCode = await action({ settings, reporter, now, env, cwd });
  });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version end here with code 0; commander has already printed any usage error.
      return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    if (error instanceof DeployctlError) {
      process.stderr.write(`deployctl: ${error.message}\n`);
      if (error.hint) process.stderr.write(`  ${error.hint}\n`);
      return error.exitCode;
    }
    const err = error as Error;
    process.stderr.write(`deployctl: unexpected error: ${err.message}\n`);
    if (verbose || process.env.DEBUG) process.stderr.write(`${err.stack}\n`);
    return ExitCode.failure;
  }
}
