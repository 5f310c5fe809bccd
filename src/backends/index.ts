import type { Log } from '../core/log.js';
import { sameTarget, type Target } from '../core/record.js';
import type { Backend, BackendModule, BackendReader, Destination } from './backend.js';

/**
 * Every backend, by the name a target carries: one line each. A backend's folder is loaded only
 * when it is used, and nothing outside src/backends/ imports one.
 */
const BACKENDS: Record<Target['backend'], () => Promise<BackendModule>> = {
  pushgateway: async () => (await import('./pushgateway/index.js')).pushgateway,
  'remote-write': async () => (await import('./remote-write/index.js')).remoteWrite,
};

/**
 * The backend records of this destination go to, or a kept record's target: with the
 * destination's credentials only when the target is the configured one. `timeoutSeconds`
 * narrows the budget (never widens it).
 */
export async function openBackend(
  destination: Destination,
  log: Log,
  {
    target = destination.target,
    timeoutSeconds = destination.timeoutSeconds,
  }: { target?: Target; timeoutSeconds?: number } = {},
): Promise<Backend> {
  const backend = await BACKENDS[target.backend]();
  return backend.openBackend(destination, log, {
    target,
    configured: sameTarget(target, destination.target),
    timeoutSeconds: Math.min(timeoutSeconds, destination.timeoutSeconds),
  });
}

/** What `status`, `dora`, `delete` and `doctor` read: the configured backend. */
export async function openReader(destination: Destination, log: Log): Promise<BackendReader> {
  return (await BACKENDS[destination.target.backend]()).openReader(destination, log);
}
