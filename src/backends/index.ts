import { redactUrl } from '../adapters/http-endpoint.js';
import type { Reporter } from '../cli/output.js';
import type { Settings } from '../cli/settings.js';
import { sameTarget, type Target } from '../core/record.js';
import type { Backend, OpenBackend } from './backend.js';

/** Every backend, by the name a kept record's target carries. Loaded only when used. */
const BACKENDS: Record<Target['backend'], () => Promise<{ openBackend: OpenBackend }>> = {
  pushgateway: () => import('./pushgateway/index.js'),
  'remote-write': () => import('./remote-write/index.js'),
};

/** Where this configuration sends records: the backend and its URL without credentials or query. */
export function targetOf(settings: Pick<Settings, 'pushgateway' | 'remoteWrite'>): Target {
  if (settings.remoteWrite)
    return { backend: 'remote-write', url: redactUrl(settings.remoteWrite, { dropCredentials: true }) };
  return { backend: 'pushgateway', url: redactUrl(settings.pushgateway, { dropCredentials: true }) };
}

/**
 * The backend of this configuration, or of a kept record's target: with this configuration's
 * credentials only when the target is the configured one. `timeoutSeconds` narrows the budget.
 */
export async function openBackend(
  settings: Settings,
  reporter: Reporter,
  {
    target = targetOf(settings),
    timeoutSeconds = settings.timeoutSeconds,
  }: { target?: Target; timeoutSeconds?: number } = {},
): Promise<Backend> {
  const { openBackend: open } = await BACKENDS[target.backend]();
  return open(settings, reporter, {
    target,
    configured: sameTarget(target, targetOf(settings)),
    timeoutSeconds: Math.min(timeoutSeconds, settings.timeoutSeconds),
  });
}

export const BACKEND_NAMES = Object.keys(BACKENDS) as Target['backend'][];
