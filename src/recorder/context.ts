import type { Backend, Destination } from '../backends/backend.js';
import { openBackend } from '../backends/index.js';
import { DeployctlError, GatewayError } from '../core/errors.js';
import type { Log } from '../core/log.js';
import type { Target } from '../core/record.js';
import {
  AFTER_REFUSED_SECONDS,
  forgetRefused,
  REMEMBER_REFUSED_SECONDS,
  refusedRecently,
  rememberRefused,
} from './refused.js';

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

/**
 * Opens the destination's backend, or a kept record's `target`, through the context. A delivery
 * that meets a refused connection notes it in the state directory (refused.ts); while that note is
 * fresh, a recording command's own target gets one short try instead of retries for the whole
 * --timeout, and its record is kept at once (`flush`, which names its targets, always gets its budget).
 */
export async function openBackendFor(
  context: RecorderContext,
  options?: { target?: Target; timeoutSeconds?: number },
): Promise<Backend> {
  const { destination, log } = context;
  const target = options?.target ?? destination.target;
  let opened = options;
  if (!options?.target && !context.dryRun && refusedRecently(destination.stateDir, target, Date.now() / 1000)) {
    const seconds = Math.min(options?.timeoutSeconds ?? destination.timeoutSeconds, AFTER_REFUSED_SECONDS);
    log.debug(`${target.url} refused a connection less than ${REMEMBER_REFUSED_SECONDS}s ago: one try`);
    opened = { ...options, timeoutSeconds: seconds };
  }
  const backend = await (context.openBackend ?? openBackend)(destination, log, opened);
  if (context.dryRun) return backend;
  const deliver = backend.deliver.bind(backend);
  backend.deliver = async (...args) => {
    try {
      const delivered = await deliver(...args);
      forgetRefused(destination.stateDir, target);
      return delivered;
    } catch (error) {
      if (error instanceof GatewayError && error.kind === 'refused') {
        rememberRefused(destination.stateDir, target, Date.now() / 1000);
      }
      throw error;
    }
  };
  return backend;
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
