import { describe, expect, it } from 'vitest';
import { COMMANDS, type CommandName, hoistGlobalOptions, type Invocation, parseQuick } from '../../src/cli/options.js';
import { buildProgram } from '../../src/cli/program.js';

/** What commander makes of a command line: the invocation, or the error it stops with. */
async function commanderParse(argv: string[]): Promise<Invocation | { error: string }> {
  let invoked: Invocation | undefined;
  const program = buildProgram(async (invocation) => {
    invoked = invocation;
  });
  const silent = { writeOut: () => undefined, writeErr: () => undefined };
  for (const command of [program, ...program.commands]) command.configureOutput(silent);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    return { error: (error as { code?: string }).code ?? String(error) };
  }
  return invoked ?? { error: 'nothing invoked' };
}

/** A small deterministic generator, so that a failure names a line that can be run again. */
function random(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]! };
}

const QUICK: CommandName[] = ['record', 'run', 'step', 'start', 'finish'];
const VALUES = [
  'api',
  'prod',
  'success',
  'failure',
  'cancelled',
  'bad',
  '12',
  '',
  'a=b',
  'x y',
  '-5',
  '--json',
  'ünïcode',
  '2026-01-01T00:00:00Z',
];
const WORDS = ['./deploy.sh', 'migrate', '--force', '-x', 'true', 'sh', '-c', 'exit 3', '--', '-', '--json'];

function line(rng: ReturnType<typeof random>): string[] {
  const command = rng.pick(QUICK);
  const options = COMMANDS[command].options;
  const argv: string[] = [command];
  const count = Math.floor(rng.next() * 6);
  for (let i = 0; i < count; i++) {
    const roll = rng.next();
    if (roll < 0.06) argv.push(rng.pick(['--bogus', '-z', '-qv', '--help', '-h']));
    else if (roll < 0.12) argv.push(rng.pick(WORDS));
    else {
      const option = rng.pick(options);
      const [, short, long] = /^(?:-(\w), )?--([\w-]+)/.exec(option.flags)!;
      const name = short && rng.next() < 0.5 ? `-${short}` : `--${long}`;
      const value = option.choices && rng.next() < 0.7 ? rng.pick(option.choices) : rng.pick(VALUES);
      if (!option.flags.includes('<')) argv.push(rng.next() < 0.05 ? `${name}=x` : name);
      else if (name.startsWith('--') && rng.next() < 0.3) argv.push(`${name}=${value}`);
      else argv.push(name, value);
    }
  }
  if (command === 'run' || command === 'step') {
    if (command === 'step' && rng.next() < 0.9) argv.push(rng.pick(['migrate', 'smoke']));
    const tail = Math.floor(rng.next() * 3);
    if (rng.next() < 0.6) argv.push('--');
    for (let i = 0; i < tail; i++) argv.push(rng.pick(WORDS));
  }
  return argv;
}

describe('the quick command line parser', () => {
  it('reads every line it accepts exactly as commander does, and leaves the rest to commander', async () => {
    const rng = random(Number(process.env.OPTIONS_SEED ?? 13));
    let accepted = 0;
    let rejected = 0;
    for (let i = 0; i < Number(process.env.OPTIONS_LINES ?? 3000); i++) {
      const argv = line(rng);
      const quick = parseQuick(argv);
      if (quick === undefined) {
        rejected++;
        continue;
      }
      accepted++;
      expect({ argv, parsed: await commanderParse(argv) }).toEqual({ argv, parsed: quick });
    }
    // Both sides matter: most everyday lines go quick, and odd ones are left to commander.
    expect(accepted).toBeGreaterThan(1000);
    expect(rejected).toBeGreaterThan(300);
  });

  it('reads the lines of the README the same way', async () => {
    const lines = [
      ['record', '-s', 'api', '-e', 'prod', '--status', 'success', '--duration', '12', '-q'],
      [
        'record',
        '--service=api',
        '--env=prod',
        '--status=failure',
        '--label',
        'team=a',
        '--label',
        'region=eu',
        '--json',
      ],
      ['run', '-s', 'api', '-e', 'prod', '--', './deploy.sh', '--force'],
      ['run', '-s', 'api', '-e', 'prod', './deploy.sh', '--force', '-s', 'x'],
      ['step', 'migrate', '-s', 'api', '-e', 'prod', '--', 'sh', '-c', 'exit 3'],
      ['start', '-s', 'api', '-e', 'prod', '--version', '1.2.3', '--commit', 'abc'],
      ['finish', '-s', 'api', '-e', 'prod', '--status', 'cancelled', '--strict', '--timeout', '3'],
    ];
    for (const argv of lines) {
      const quick = parseQuick(argv);
      expect(quick, argv.join(' ')).toBeDefined();
      expect(await commanderParse(argv)).toEqual(quick);
    }
    expect(parseQuick(['run', '-s', 'api', './deploy.sh', '--force', '-s', 'x'])).toEqual({
      command: 'run',
      operands: ['./deploy.sh', '--force', '-s', 'x'],
      flags: { service: 'api' },
    });
  });

  it('leaves help, other commands and mistakes to commander', () => {
    for (const argv of [
      [],
      ['--help'],
      ['record', '--help'],
      ['status'],
      ['record', '--status', 'maybe'],
      ['record', '-qv'],
      ['record', 'extra'],
      ['record', '-s', 'a', '-s', 'b'],
      ['step'],
    ]) {
      expect(parseQuick(argv), argv.join(' ')).toBeUndefined();
    }
  });
});

describe('the options every command takes, before the command', () => {
  it('move after it', () => {
    expect(hoistGlobalOptions(['--config', 'x.json', 'record', '--status', 'success'])).toEqual([
      'record',
      '--config',
      'x.json',
      '--status',
      'success',
    ]);
    expect(hoistGlobalOptions(['--json', '--timeout=3', '-q', 'status', '-s', 'api'])).toEqual([
      'status',
      '--json',
      '--timeout=3',
      '-q',
      '-s',
      'api',
    ]);
    expect(hoistGlobalOptions(['--pushgateway', 'http://gw', 'run', '--', './deploy.sh', '--json'])).toEqual([
      'run',
      '--pushgateway',
      'http://gw',
      '--',
      './deploy.sh',
      '--json',
    ]);
  });

  it('leave help, --version, unknown options and lines without a command as they are', () => {
    for (const argv of [
      ['--help'],
      ['--version'],
      ['-V'],
      ['--service', 'api', 'record'],
      ['--config', 'x.json'],
      ['--config', 'x.json', 'nonsense'],
      ['record', '--config', 'x.json'],
    ])
      expect(hoistGlobalOptions(argv)).toEqual(argv);
  });

  it('every command has examples for its --help, each a line that parses as that command', async () => {
    for (const [name, spec] of Object.entries(COMMANDS)) {
      expect(spec.examples.length, name).toBeGreaterThan(0);
      for (const line of spec.examples) {
        // Words, and 'quoted text' as one word, as a shell splits them.
        const words = [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
        expect(words[0], line).toBe('deployctl');
        const parsed = await commanderParse(hoistGlobalOptions(words.slice(1)));
        expect(parsed, line).toMatchObject({ command: name });
      }
    }
  });
});
