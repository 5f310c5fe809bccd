import { ExitCode } from './exit-codes.js';

export { ExitCode };

/** Thrown anywhere below the CLI entry, with its exit code (exit-codes.ts); only src/cli/cli.ts ends a command with it. */
export class DeployctlError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.failure,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'DeployctlError';
  }
}

/** Bad flags, config or values: exit code 2, and nothing is pushed or started. */
export class UsageError extends DeployctlError {
  constructor(message: string, hint?: string) {
    super(message, ExitCode.usage, hint);
    this.name = 'UsageError';
  }
}

/**
 * A problem with deployctl's surroundings rather than its command line: the config file, the
 * environment, a secret file, a missing service or environment. Exit code 2 for commands that only
 * read; a command that records warns ("not recorded") and does not change the deploy's outcome
 * (`run` and `step` still run the command) unless --strict asks for exit 2.
 */
export class SettingsError extends DeployctlError {
  constructor(message: string, hint?: string) {
    super(message, ExitCode.usage, hint);
    this.name = 'SettingsError';
  }
}

/**
 * What kind of failure a backend's client saw: `permanent`, a refusal that sending the same record
 * to the same URL again can never change (a wrong path, the wrong scheme, a store that will never
 * take these samples): the record waits for a decision (`deployctl outbox`); `refused`, a
 * connection refused at once (nothing listens there now).
 */
export type FailureKind = 'permanent' | 'refused';

/** The gateway could not be reached, timed out or answered with an error. */
export class GatewayError extends DeployctlError {
  constructor(
    message: string,
    readonly status?: number,
    readonly retryable = false,
    hint?: string,
    readonly kind?: FailureKind,
  ) {
    super(message, ExitCode.failure, hint);
    this.name = 'GatewayError';
  }
}
