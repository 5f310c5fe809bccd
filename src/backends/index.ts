import { redactUrl, trustOnly } from '../adapters/http-endpoint.js';
import { Prometheus } from '../adapters/prometheus.js';
import { selector } from '../core/dora/promql.js';
import { FAMILIES } from '../core/families.js';
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

/**
 * What `status`, `dora`, `delete` and `doctor` read: the configured backend. With `detectFor`
 * (`status` and `dora`: the groups they ask about), a Pushgateway destination that has a query API (--prometheus) and no
 * --remote-write reads what that store holds: see detectContract.
 */
export async function openReader(
  destination: Destination,
  log: Log,
  detectFor?: ContractFilter,
): Promise<BackendReader> {
  const chosen = detectFor ? await detectContract(destination, log, detectFor) : destination;
  return (await BACKENDS[chosen.target.backend]()).openReader(chosen, log);
}

export interface ContractFilter {
  job: string;
  service?: string | undefined;
  environment?: string | undefined;
}

/** Groups of the two metric contracts the query API holds for the filter. */
export interface ContractCounts {
  /** Groups with remote-write ledger series (deployctl_deployment_finished_timestamp_seconds). */
  ledger: number;
  /** Groups of Pushgateway totals scraped with honor_labels (job kept). */
  totals: number;
  /** Groups of Pushgateway totals scraped without honor_labels (the job in exported_job). */
  exportedTotals: number;
}

/**
 * Which contract to read, from what the store holds for the groups asked about: the ledger alone →
 * the remote-write reader on the query API; totals (with or without honor_labels) or nothing → the
 * Pushgateway, as configured. Both → the Pushgateway, which was configured, and a line naming the
 * ledger's groups and --remote-write. Says in one line what it read.
 */
export function chooseContract(
  counts: ContractCounts,
  prometheus: string,
): { backend: Target['backend']; notes: string[] } {
  const totals = counts.totals + counts.exportedTotals;
  const groups = (n: number) => `${n} group${n === 1 ? '' : 's'}`;
  if (counts.ledger > 0 && totals === 0)
    return { backend: 'remote-write', notes: [`reading remote-write ledger series from ${prometheus}`] };
  if (totals === 0) return { backend: 'pushgateway', notes: [] };
  const notes = [`reading Pushgateway totals scraped by ${prometheus}`];
  if (counts.ledger > 0)
    notes.push(
      `${prometheus} also holds remote-write ledger series of ${groups(counts.ledger)}; add --remote-write (or DEPLOYCTL_REMOTE_WRITE_URL) to read them`,
    );
  return { backend: 'pushgateway', notes };
}

async function detectContract(destination: Destination, log: Log, filter: ContractFilter): Promise<Destination> {
  if (destination.target.backend !== 'pushgateway' || !destination.prometheus) return destination;
  const prometheus = destination.prometheus;
  const shown = redactUrl(prometheus, { dropCredentials: true });
  const { LEDGER, HISTORY_LOOKBACK } = await import('./remote-write/ledger.js');
  const rest: Record<string, string> = {};
  if (filter.service !== undefined) rest.service = filter.service;
  if (filter.environment !== undefined) rest.environment = filter.environment;
  const groupsOf = (expr: string, job = 'job') => `count(count by (${job}, service, environment) (${expr}))`;
  let counts: ContractCounts;
  try {
    const api = new Prometheus(
      prometheus,
      Math.min(destination.timeoutSeconds, 5) * 1000,
      undefined,
      {},
      trustOnly(destination.tls),
    );
    const count = async (expr: string) => (await api.query(expr))[0]?.value ?? 0;
    const [ledger, totals, exportedTotals] = await Promise.all([
      count(
        groupsOf(
          `last_over_time(${LEDGER.finished}${selector({ job: filter.job, ...rest }, '=')}[${HISTORY_LOOKBACK}])`,
        ),
      ),
      count(groupsOf(`${FAMILIES.deployments.name}${selector({ job: filter.job, ...rest }, '=')}`)),
      count(
        groupsOf(`${FAMILIES.deployments.name}${selector({ exported_job: filter.job, ...rest }, '=')}`, 'exported_job'),
      ),
    ]);
    counts = { ledger, totals, exportedTotals };
  } catch (error) {
    log.debug(`could not ask ${shown} which metric contract it holds: ${(error as Error).message}`);
    return destination;
  }
  const { backend, notes } = chooseContract(counts, shown);
  for (const note of notes) {
    if (log.note) log.note(note);
    else log.warn(note);
  }
  if (backend === 'pushgateway') return destination;
  return {
    ...destination,
    target: { backend, url: shown },
    url: prometheus,
    // The configured credentials are the gateway's: the query API gets only those in its own URL,
    // and of TLS only the CA to trust.
    auth: {},
    tls: trustOnly(destination.tls),
  };
}
