/**
 * The command line as data: every command's arguments and options, in the order `--help` shows
 * them. Commander builds the full CLI from it (cli.ts); `parseQuick` reads the common command
 * lines of the recording commands from it without loading commander.
 */

export interface OptionSpec {
  /** Commander's notation: `-s, --service <name>` or `--dry-run`. */
  flags: string;
  description: string;
  /** Given more than once, the values collect into a list. */
  repeatable?: boolean;
  choices?: readonly string[];
  hidden?: boolean;
}

export type CommandName =
  | 'record'
  | 'run'
  | 'step'
  | 'start'
  | 'finish'
  | 'status'
  | 'delete'
  | 'doctor'
  | 'dora'
  | 'flush'
  | 'verify'
  | 'incident'
  | 'outbox';

export interface CommandDefinition {
  description: string;
  /** Commander's notation: `<name>`, `[command...]`. */
  arguments?: { name: string; description: string }[];
  options: OptionSpec[];
  /** Options after the first argument belong to the command run (`run`). */
  passThrough?: boolean;
  /** Command lines shown at the end of `--help`. */
  examples: string[];
}

const GLOBAL: OptionSpec[] = [
  {
    flags: '--pushgateway <url>',
    description: 'Pushgateway URL (env DEPLOYCTL_PUSHGATEWAY_URL; default http://localhost:9091)',
  },
  {
    flags: '--remote-write <url>',
    description: 'Prometheus remote-write URL, instead of the Pushgateway (env DEPLOYCTL_REMOTE_WRITE_URL)',
  },
  {
    flags: '--prometheus <url>',
    description: 'Prometheus query API: for dora, status and reads on remote-write (env DEPLOYCTL_PROMETHEUS_URL)',
  },
  { flags: '--job <name>', description: 'job label of the group (default deployctl)' },
  {
    flags: '--config <path>',
    description: 'config file (default: search for .deployctlrc*, deployctl.config.*, package.json "deployctl")',
  },
  { flags: '--dry-run', description: 'start, send, write and delete nothing; print what would be done' },
  { flags: '--json', description: 'machine-readable output on stdout' },
  { flags: '-q, --quiet', description: 'print only warnings and errors' },
  { flags: '-v, --verbose', description: 'print each request to the gateway on stderr' },
  { flags: '--strict', description: 'exit non-zero when the metrics cannot be pushed' },
  { flags: '--timeout <seconds>', description: 'total time to spend talking to the gateway (default 5)' },
  {
    flags: '--header <"Name: value">',
    description: 'extra HTTP header for the gateway (repeatable)',
    repeatable: true,
  },
  {
    flags: '--ca-file <path>',
    description: 'CA certificate(s) to trust for https: the gateway or store, Prometheus, Alertmanager',
  },
  { flags: '--cert-file <path>', description: 'client certificate for an https gateway or store' },
  { flags: '--key-file <path>', description: 'key of the client certificate' },
  {
    flags: '--insecure',
    description: 'do not verify TLS certificates (the gateway or store, Prometheus, Alertmanager)',
  },
];

/** For run and step, whose stdout is the command's own: their --json document goes to stderr. */
const WRAPPING_GLOBAL: OptionSpec[] = GLOBAL.map((option) =>
  option.flags === '--json'
    ? { ...option, description: "machine-readable result as one JSON line on stderr (stdout is the command's own)" }
    : option,
);

const TARGET: OptionSpec[] = [
  { flags: '-s, --service <name>', description: 'service deployed (env DEPLOYCTL_SERVICE)' },
  { flags: '-e, --env <name>', description: 'environment deployed to (env DEPLOYCTL_ENV; --environment also works)' },
  { flags: '--environment <name>', description: 'the same as --env', hidden: true },
  {
    flags: '-l, --label <key=value>',
    description: 'extra label on the deployment metrics (repeatable)',
    repeatable: true,
  },
];

const METADATA: OptionSpec[] = [
  { flags: '--version <version>', description: 'version deployed (default: git describe --tags, else the commit)' },
  { flags: '--commit <sha>', description: 'commit deployed (default: from CI, else git HEAD)' },
  { flags: '--commit-time <time>', description: "the deployed commit's time, for lead time (default: from git)" },
  { flags: '--branch <name>', description: 'branch deployed (default: from CI)' },
  { flags: '--repository <name>', description: 'repository (default: from CI)' },
  { flags: '--build-url <url>', description: 'CI build URL (default: from CI)' },
];

const CHILD: OptionSpec[] = [
  { flags: '--shell', description: 'run the command through a shell' },
  { flags: '--kill-after <seconds>', description: 'kill the command this long after passing on a signal (default 10)' },
];

const STATUS: OptionSpec = {
  flags: '--status <status>',
  description: 'how it ended',
  choices: ['success', 'failure', 'cancelled'],
};
const COMMAND_ARGUMENT = { name: '[command...]', description: 'the command and its arguments, after --' };

export const COMMANDS: Record<CommandName, CommandDefinition> = {
  record: {
    examples: [
      'deployctl record -s checkout/api -e production --status success --version 1.4.2',
      'deployctl record -s checkout/api -e production --status failure --started-at 2026-01-05T10:00:00Z',
      'deployctl --config ci/deployctl.json record --status success --remote-write https://vm.example/api/v1/write',
    ],
    description: 'record one finished deployment',
    options: [
      STATUS,
      ...METADATA,
      { flags: '--duration <seconds>', description: 'how long it took' },
      { flags: '--started-at <time>', description: 'when it started (Unix seconds or ISO 8601)' },
      { flags: '--finished-at <time>', description: 'when it finished (default: now)' },
      ...TARGET,
      ...GLOBAL,
    ],
  },
  run: {
    examples: [
      'deployctl run -s checkout/api -e production -- ./deploy.sh --force',
      "deployctl run -s checkout/api -e staging --shell -- 'make deploy && make smoke'",
    ],
    description: "run a deploy command and record it; exits with the command's exit code",
    arguments: [{ name: '[command...]', description: 'the deploy command and its arguments, after --' }],
    // `deployctl run -s api -e prod ./deploy.sh --force`: --force is the script's.
    passThrough: true,
    options: [...METADATA, ...CHILD, ...TARGET, ...WRAPPING_GLOBAL],
  },
  step: {
    examples: ['deployctl step migrate -s checkout/api -e production -- ./migrate.sh'],
    description: 'run and time one step of a deployment',
    arguments: [{ name: '<name>', description: 'the step name' }, COMMAND_ARGUMENT],
    options: [...CHILD, ...TARGET, ...WRAPPING_GLOBAL],
  },
  start: {
    examples: ['deployctl start -s checkout/api -e production --version 1.4.2'],
    description: 'mark a deployment in progress (closed by finish)',
    options: [
      ...METADATA,
      { flags: '--started-at <time>', description: 'when it started (default: now)' },
      ...TARGET,
      ...GLOBAL,
    ],
  },
  finish: {
    examples: [
      'deployctl finish -s checkout/api -e production --status success',
      'deployctl finish -s checkout/api -e production',
    ],
    description: 'record the deployment that start opened',
    options: [
      STATUS,
      ...METADATA,
      { flags: '--started-at <time>', description: 'when it started (default: from start)' },
      { flags: '--finished-at <time>', description: 'when it finished (default: now)' },
      ...TARGET,
      ...GLOBAL,
    ],
  },
  status: {
    examples: ['deployctl status', 'deployctl status -s checkout/api --json'],
    description: 'the latest deployment of each service and environment on the gateway',
    options: [...TARGET, ...GLOBAL],
  },
  delete: {
    examples: ['deployctl delete -s checkout/api -e staging --yes'],
    description: 'remove a retired service/environment group from the gateway',
    options: [{ flags: '-y, --yes', description: 'do not ask for confirmation' }, ...TARGET, ...GLOBAL],
  },
  doctor: {
    examples: [
      'deployctl doctor',
      'deployctl doctor --pushgateway http://pushgateway.internal:9091 --prometheus http://prometheus:9090',
    ],
    description: 'check config, gateway and Prometheus; show what a record would push',
    options: [...TARGET, ...GLOBAL],
  },
  dora: {
    examples: [
      'deployctl dora --prometheus http://prometheus:9090',
      'deployctl dora --prometheus http://prometheus:9090 -s checkout/api --window 90d --json',
    ],
    description: 'the four DORA keys per service and environment, from Prometheus',
    options: [
      { flags: '--window <duration>', description: 'how far back, as a PromQL duration (default 30d)' },
      ...TARGET,
      ...GLOBAL,
    ],
  },
  flush: {
    examples: ['deployctl flush', 'deployctl flush --timeout 30'],
    description: 'send the records kept while the gateway was unreachable',
    options: GLOBAL,
  },
  verify: {
    examples: [
      'deployctl verify -s checkout/api -e production --prometheus http://prometheus:9090 --check \'sum(rate(http_requests_total{service="$service",code=~"5.."}[5m])) < 1\' --for 10m',
      'deployctl verify -s checkout/api -e production --prometheus http://prometheus:9090 --alertmanager http://alertmanager:9093 --for 5m',
    ],
    description: 'a gate after a deploy: PromQL checks and firing alerts; exit 0 healthy, 1 not, 3 could not tell',
    options: [
      {
        flags: '--check <check>',
        description:
          "'PROMQL <= N': a PromQL check with its bound (<=, <, >= or >) at its end (repeatable; $service, $environment, $version filled in)",
        repeatable: true,
      },
      {
        flags: '--alertmanager <url>',
        description: 'fail when an alert fires for the service and environment (API v2)',
      },
      { flags: '--for <duration>', description: 'how long to keep checking, e.g. 5m (default 5m; 0: one round)' },
      { flags: '--interval <duration>', description: 'time between rounds (default 30s)' },
      { flags: '--initial-delay <duration>', description: 'wait this long before the first round (default 0)' },
      { flags: '--failure-limit <n>', description: 'fail after this many failed rounds (default 1)' },
      {
        flags: '--version <version>',
        description: 'the version deployed, for $version (default: git describe --tags)',
      },
      ...TARGET.filter((o) => !o.flags.startsWith('-l,')),
      ...GLOBAL,
    ],
  },
  incident: {
    examples: [
      'deployctl incident open -s checkout/api -e production --id INC-42',
      'deployctl incident resolve -s checkout/api -e production --id INC-42',
      'deployctl incident --from-alertmanager payload.json',
    ],
    description: 'open or resolve an incident (production is failing, or not any more); or read them from Alertmanager',
    arguments: [{ name: '[action]', description: 'open or resolve (not with --from-alertmanager)' }],
    options: [
      { flags: '--id <id>', description: 'the incident (default: one per service and environment)' },
      { flags: '--at <time>', description: 'when it opened or was resolved (Unix seconds or ISO 8601; default: now)' },
      {
        flags: '--from-alertmanager <file>',
        description: "Alertmanager's webhook payload (JSON, version 4) to read, - for stdin",
      },
      { flags: '--service-label <name>', description: 'alert label naming the service (default service)' },
      { flags: '--env-label <name>', description: 'alert label naming the environment (default environment)' },
      {
        flags: '--attribution-window <duration>',
        description: 'open: how long after a deployment an incident makes it a failed change (default 24h; 4h, 2d, 1w)',
      },
      ...TARGET.filter((option) => !option.flags.startsWith('-l,')),
      ...GLOBAL,
    ],
  },
  outbox: {
    examples: [
      'deployctl outbox list',
      'deployctl outbox move --from http://pushgateway:9091/metrics --to http://pushgateway:9091',
      'deployctl outbox drop --target http://old-gateway:9091 --yes',
    ],
    description: 'see, drop or re-target the records kept on this machine (list, drop, move)',
    arguments: [{ name: '[action]', description: 'list (default), drop or move' }],
    options: [
      { flags: '--target <url>', description: 'drop: only the records kept for this URL' },
      { flags: '--from <url>', description: 'move: the URL the records were kept for' },
      { flags: '--to <url>', description: 'move: the URL to send them to instead' },
      { flags: '-y, --yes', description: 'drop: do not ask for confirmation' },
      ...GLOBAL,
    ],
  },
};

/** A parsed command line: the command, its arguments, and its options as commander names them (camelCase). */
export interface Invocation {
  command: CommandName;
  operands: string[];
  flags: Record<string, string | boolean | string[]>;
}

interface ParsedFlag {
  key: string;
  takesValue: boolean;
  spec: OptionSpec;
}

function parseFlag(spec: OptionSpec): { short?: string; long: string } & ParsedFlag {
  const match = /^(?:-(\w), )?--([\w-]+)(?: [<[].*[>\]])?$/.exec(spec.flags);
  if (!match) throw new Error(`bad option notation: ${spec.flags}`);
  const long = match[2]!;
  return {
    ...(match[1] && { short: match[1] }),
    long,
    key: long.replace(/-(\w)/g, (_, c: string) => c.toUpperCase()),
    takesValue: spec.flags.includes('<'),
    spec,
  };
}

/** The commands whose everyday command lines skip commander: the ones a deploy waits for. */
const QUICK: ReadonlySet<CommandName> = new Set(['record', 'run', 'step', 'start', 'finish']);

/**
 * Reads the everyday command lines of the recording commands; undefined for anything else (help,
 * an unknown or repeated option, a value that starts with `-`, joined short flags, a wrong
 * choice), which commander then parses and, if need be, explains. Where both parse a line they
 * agree (test/unit/options.test.ts).
 */
export function parseQuick(argv: readonly string[]): Invocation | undefined {
  const command = argv[0] as CommandName;
  if (!QUICK.has(command)) return undefined;
  const spec = COMMANDS[command];
  const byName = new Map<string, ParsedFlag>();
  for (const option of spec.options) {
    const parsed = parseFlag(option);
    byName.set(`--${parsed.long}`, parsed);
    if (parsed.short) byName.set(`-${parsed.short}`, parsed);
  }
  const flags: Invocation['flags'] = {};
  const operands: string[] = [];
  for (let i = 1; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === '--') {
      if (!spec.arguments && i + 1 < argv.length) return undefined;
      operands.push(...argv.slice(i + 1));
      break;
    }
    if (!token.startsWith('-') || token === '-') {
      if (!spec.arguments) return undefined;
      if (spec.passThrough) {
        operands.push(...argv.slice(i));
        break;
      }
      operands.push(token);
      continue;
    }
    const equals = token.startsWith('--') ? token.indexOf('=') : -1;
    const name = equals > 0 ? token.slice(0, equals) : token;
    const option = byName.get(name);
    if (!option || (!token.startsWith('--') && token.length !== 2)) return undefined;
    let value: string | true = true;
    if (option.takesValue) {
      if (equals > 0) value = token.slice(equals + 1);
      else {
        const next = argv[++i];
        if (next === undefined || next.startsWith('-')) return undefined;
        value = next;
      }
    } else if (equals > 0) return undefined;
    if (option.spec.choices && !option.spec.choices.includes(value as string)) return undefined;
    if (option.spec.repeatable)
      flags[option.key] = [...((flags[option.key] as string[] | undefined) ?? []), value as string];
    else if (option.key in flags) return undefined;
    else flags[option.key] = value;
  }
  if (command === 'step' && operands.length === 0) return undefined;
  return { command, operands, flags };
}

/**
 * `deployctl --config X record ...`: the options every command takes, given before the command,
 * moved after it, where commander and parseQuick read them. Anything else before the command
 * (help, --version, an unknown option) leaves the line as it is, for commander to answer.
 */
export function hoistGlobalOptions(argv: readonly string[]): string[] {
  const byName = new Map<string, ParsedFlag>();
  for (const option of GLOBAL) {
    const parsed = parseFlag(option);
    byName.set(`--${parsed.long}`, parsed);
    if (parsed.short) byName.set(`-${parsed.short}`, parsed);
  }
  let i = 0;
  while (i < argv.length && argv[i]!.startsWith('-')) {
    const token = argv[i]!;
    const equals = token.startsWith('--') ? token.indexOf('=') : -1;
    const option = byName.get(equals > 0 ? token.slice(0, equals) : token);
    if (!option) return [...argv];
    i += option.takesValue && equals < 0 ? 2 : 1;
  }
  if (i === 0 || i >= argv.length || !(argv[i]! in COMMANDS)) return [...argv];
  return [argv[i]!, ...argv.slice(0, i), ...argv.slice(i + 1)];
}
