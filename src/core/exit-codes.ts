/**
 * deployctl's own exit codes, with what each means, and the mapping from outcomes and errors to
 * them: the one table the CLI uses and docs/failure-modes.md shows (a unit test keeps them equal).
 * `run` and `step` exit with the wrapped command's own code instead, whatever deployctl met.
 */
export const EXIT_CODES = [
  {
    code: 0,
    name: 'ok',
    meaning:
      'recorded, or kept for later, or not recorded (or, for `flush`, not flushed) because of a bad config file or the environment (a warning says which); also `--dry-run`, `--help` and `--version`',
  },
  {
    code: 1,
    name: 'failure',
    meaning:
      'under `--strict`, `record`, `start` or `finish` could not deliver the record (it is kept) or could not make it; `flush` left records it can retry kept, or quarantined some (records refused for good wait for `deployctl outbox` and do not fail it); `doctor` found a problem; `status`, `delete` or `dora` could not reach the gateway or Prometheus; `delete` found no such group, was refused on remote-write or was answered no; `verify`: a check failed or an alert fired; an unexpected error outside recording',
  },
  {
    code: 2,
    name: 'usage',
    meaning:
      'bad flags or values on the command line: nothing is pushed and no command is started; `delete` or `outbox drop` without `--yes` and no terminal to ask on; for the reading commands (`status`, `dora`, `doctor`, `delete`, `verify`, `outbox`) also a bad config file or missing settings, and for the recording commands (`record`, `start`, `finish`, `run`, `step`, `flush`, `incident`) the same under `--strict` (before `run` or `step` starts the command)',
  },
  {
    code: 3,
    name: 'inconclusive',
    meaning:
      '`verify`: nothing could be judged: a check had no data in every round, or Prometheus or Alertmanager could not be reached or gave no usable answer (a gate never passes on silence)',
  },
  {
    code: 126,
    name: 'cannotExecute',
    meaning:
      '`run` or `step`: the command could not be started (not executable, or another start error); nothing is recorded',
  },
  {
    code: 127,
    name: 'notFound',
    meaning: '`run` or `step`: the command was not found; nothing is recorded',
  },
  {
    code: 130,
    name: 'interrupted',
    meaning:
      '`delete`: the question on the terminal was answered with Ctrl-C or the end of input (128 + SIGINT); nothing is deleted; `verify` stopped by Ctrl-C (nothing is recorded)',
  },
] as const;

type Entry = (typeof EXIT_CODES)[number];

/** The codes by name: `ExitCode.usage` is 2. */
export const ExitCode = Object.fromEntries(EXIT_CODES.map((e) => [e.name, e.code])) as {
  [E in Entry as E['name']]: E['code'];
};

/** A recording command: 0 unless the record was neither delivered nor kept for a dry run and --strict asks for 1. */
export function recordExitCode(outcome: { delivered: boolean; dryRun?: unknown }, strict: boolean): number {
  return outcome.delivered || outcome.dryRun || !strict ? ExitCode.ok : ExitCode.failure;
}

/** `flush`: 1 while anything is still kept or cannot be sent. */
export function flushExitCode(outcome: { dryRun: boolean; stillKept: number; quarantined: number }): number {
  if (outcome.dryRun) return ExitCode.ok;
  return outcome.stillKept > 0 || outcome.quarantined > 0 ? ExitCode.failure : ExitCode.ok;
}

/** `doctor`: 1 when a check failed (warnings do not count). */
export function doctorExitCode(problems: number): number {
  return problems > 0 ? ExitCode.failure : ExitCode.ok;
}

/** `delete`: 1 when the question was answered no, 130 when it was interrupted. */
export function deleteExitCode(declined: 'no' | 'interrupted' | undefined): number {
  if (declined === 'interrupted') return ExitCode.interrupted;
  return declined === 'no' ? ExitCode.failure : ExitCode.ok;
}

/** `verify`: its verdict is its exit code (0 pass, 1 fail, 3 inconclusive), whatever recording it met. */
export function verifyExitCode(result: 'pass' | 'fail' | 'inconclusive'): number {
  return { pass: ExitCode.ok, fail: ExitCode.failure, inconclusive: ExitCode.inconclusive }[result];
}
