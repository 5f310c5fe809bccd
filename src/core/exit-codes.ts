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
      'done: recorded, or kept for later, or not recorded because of the config or environment (recording commands without --strict)',
  },
  {
    code: 1,
    name: 'failure',
    meaning:
      'the backend failed or refused (reading commands, doctor with a problem, flush with records still kept, delete declined); a record not delivered under --strict',
  },
  {
    code: 2,
    name: 'usage',
    meaning:
      'bad command line: nothing is pushed and no command runs; a bad config or environment for reading commands, and for recording commands under --strict',
  },
  { code: 126, name: 'cannotExecute', meaning: 'run or step: the command was found but could not be started' },
  { code: 127, name: 'notFound', meaning: 'run or step: the command was not found' },
  { code: 130, name: 'interrupted', meaning: 'delete: the question was interrupted (Ctrl-C or the end of input)' },
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
