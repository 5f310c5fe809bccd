import pRetry from 'p-retry';
import { DeployctlError, GatewayError } from '../core/errors.js';

/** The --timeout budget is spent; the error before it says why. */
export class OutOfTimeError extends GatewayError {
  constructor(shown: string) {
    super(`no time left to ${shown} (--timeout)`, undefined, false);
    this.name = 'OutOfTimeError';
  }
}

/**
 * Runs `work` until it succeeds, retrying what a GatewayError marks retryable (network errors,
 * time-outs, 429, 5xx) with exponential backoff and jitter while the budget lasts. When the
 * budget ends it, the error is the failure that used the time up, with the attempts counted.
 */
export async function retryWithinBudget<T>(
  remainingMs: () => number,
  debug: ((message: string) => void) | undefined,
  work: () => Promise<T>,
): Promise<{ value: T; attempts: number }> {
  let attempts = 0;
  let lastCause: Error | undefined;
  const started = Date.now();
  try {
    const value = await pRetry(
      () => {
        attempts += 1;
        return work();
      },
      {
        retries: 20,
        minTimeout: 50,
        maxTimeout: 1000,
        factor: 2,
        randomize: true,
        maxRetryTime: Math.max(0, remainingMs()),
        shouldRetry: ({ error }) => error instanceof GatewayError && error.retryable && remainingMs() > 50,
        onFailedAttempt: ({ error, attemptNumber }) => {
          if (!(error instanceof OutOfTimeError)) lastCause = error;
          debug?.(`attempt ${attemptNumber} failed: ${error.message}`);
        },
      },
    );
    return { value, attempts };
  } catch (error) {
    const cause = error instanceof OutOfTimeError && lastCause ? lastCause : error;
    if (cause instanceof DeployctlError && attempts > 1) {
      cause.message = `${cause.message} (${attempts} attempts in ${((Date.now() - started) / 1000).toFixed(1)}s)`;
    }
    throw cause;
  }
}
