import { Command, Option } from 'commander';
import { COMMANDS, type CommandName, type Invocation, type OptionSpec } from './options.js';

declare const __DEPLOYCTL_VERSION__: string;
const VERSION = typeof __DEPLOYCTL_VERSION__ === 'string' ? __DEPLOYCTL_VERSION__ : '0.0.0-dev';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function option(spec: OptionSpec): Option {
  const made = new Option(spec.flags, spec.description);
  if (spec.repeatable) made.argParser(collect);
  if (spec.choices) made.choices(spec.choices);
  if (spec.hidden) made.hideHelp();
  return made;
}

/**
 * The whole command line, with help, suggestions and error messages, from the table in
 * options.ts. Each command hands its parsed line to `invoke`.
 */
export function buildProgram(invoke: (invocation: Invocation) => Promise<void>): Command {
  const program = new Command('deployctl')
    .description('Record deployments and DORA metrics to a Prometheus Pushgateway')
    .version(VERSION, '-V, --version', 'print the deployctl version')
    .enablePositionalOptions()
    .showHelpAfterError('(run deployctl --help for the commands)')
    .addHelpText(
      'after',
      [
        '',
        'The options every command takes (--pushgateway, --config, --json, --timeout, …) go before or after it.',
        '',
        'Examples:',
        '  $ deployctl run -s checkout/api -e production -- ./deploy.sh',
        '  $ deployctl record -s checkout/api -e production --status success',
        '  $ deployctl --config ci/deployctl.json status',
        '  $ deployctl dora --prometheus http://prometheus:9090',
        '  $ deployctl doctor',
      ].join('\n'),
    )
    .exitOverride();

  for (const [name, spec] of Object.entries(COMMANDS) as [CommandName, (typeof COMMANDS)[CommandName]][]) {
    const command = program.command(name).description(spec.description);
    for (const argument of spec.arguments ?? []) command.argument(argument.name, argument.description);
    for (const each of spec.options) command.addOption(option(each));
    if (spec.passThrough) command.passThroughOptions();
    command.addHelpText('after', `\nExamples:\n${spec.examples.map((line) => `  $ ${line}`).join('\n')}`);
    command.showHelpAfterError(`(run deployctl ${name} --help for its options)`);
    command.action(async (...args: unknown[]) => {
      // commander passes the arguments, then the options, then the command itself.
      const given = args.slice(0, spec.arguments?.length ?? 0) as (string | string[] | undefined)[];
      const operands = given.flatMap((value) => (value === undefined ? [] : value));
      await invoke({ command: name, operands, flags: args[given.length] as Invocation['flags'] });
    });
  }
  return program;
}
