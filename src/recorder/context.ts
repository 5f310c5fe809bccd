import type { Backend, Destination } from '../backends/backend.js';
import { openBackend } from '../backends/index.js';
import { DeployctlError, GatewayError } from '../core/errors.js';
import type { Log } from '../core/log.js';
import type { Target } from '../core/record.js';

/** What the recorder needs of the command that records: where to, where to say things, a clock. */
export interface RecorderContext {
  destination: Destination;
  log: Log;
  /** Unix seconds. */
  now: () => number;
  /** Show what would be sent; send and keep nothing. */
  dryRun: boolean;
  /** How backends are opened: the registry (src/backends/index.ts) unless given, as tests give a fake. */
  openBackend?: typeof openBackend;
}

/** Opens the destination's backend, or a kept record's `target`, through the context. */
export function openBackendFor(
  context: RecorderContext,
  options?: { target?: Target; timeoutSeconds?: number },
): Promise<Backend> {
  return (context.openBackend ?? openBackend)(context.destination, context.log, options);
}

export interface Failure {
  message: string;
  hint?: string;
  /** Refused for good by its target: the record waits apart for a decision (deployctl outbox). */
  permanent?: true;
}

export function asFailure(error: unknown): Failure {
  if (error instanceof DeployctlError) {
    return {
      message: error.message,
      ...(error.hint && { hint: error.hint }),
      ...(error instanceof GatewayError && error.kind === 'permanent' && { permanent: true as const }),
    };
  }
  return { message: `unexpected error: ${(error as Error)?.message ?? String(error)}` };
}
