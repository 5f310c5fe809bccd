import { redactUrl } from '../../adapters/http-endpoint.js';
import { Prometheus } from '../../adapters/prometheus.js';
import { FAMILIES } from '../../core/families.js';
import type { Check, Destination } from '../backend.js';
import type { Gateway } from './client.js';
import { loweredTotals } from './lost-totals.js';
import type { GroupState, ScalarFamily } from './model.js';
import { CONTINUE_WINDOW } from './scraped-totals.js';

/** What the gateway's own flags (its /api/v1/status) say about keeping the metrics across restarts. */
function persistenceCheck(flags: Record<string, string> | undefined): Check | undefined {
  if (!flags || !('persistence.file' in flags)) return undefined;
  if (flags['persistence.file'])
    return {
      ok: true,
      what: `the gateway keeps its metrics across restarts (--persistence.file ${flags['persistence.file']})`,
    };
  return {
    ok: false,
    warning: true,
    what: 'the gateway keeps its metrics in memory only (no --persistence.file): a restart loses every group, and the deployment totals start again from zero',
    fix: 'start the Pushgateway with --persistence.file=/var/lib/prometheus/pushgateway.db (any writable path)',
  };
}

async function gatewayFlags(gateway: Gateway): Promise<Record<string, string> | undefined> {
  try {
    const response = await gateway.request('GET', '/api/v1/status');
    return (JSON.parse(response.body) as { data?: { flags?: Record<string, string> } }).data?.flags;
  } catch {
    return undefined;
  }
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

function sameHost(a: URL, b: URL): boolean {
  const port = (u: URL) => u.port || (u.protocol === 'https:' ? '443' : '80');
  const host = (u: URL) => (LOOPBACK.has(u.hostname) ? 'loopback' : u.hostname);
  return port(a) === port(b) && host(a) === host(b);
}

/** Whether the scrape job named `job` in Prometheus's loaded configuration keeps pushed labels. */
function honorsLabels(configYaml: string, job: string): boolean {
  const blocks = configYaml.split(/\n(?=- job_name: )/);
  const block = blocks.find((b) => b.startsWith(`- job_name: ${job}\n`) || b.includes(`\n- job_name: ${job}\n`));
  return block !== undefined && /\n\s+honor_labels: true\n/.test(`${block}\n`);
}

async function prometheusChecks(url: string, gatewayUrl: URL, timeoutMs: number): Promise<Check[]> {
  const prometheus = new Prometheus(url, timeoutMs);
  const shown = redactUrl(prometheus.base);
  try {
    const targets = await prometheus.get<{
      activeTargets: { scrapePool: string; scrapeUrl: string; health: string; lastError: string }[];
    }>('/api/v1/targets');
    const target = targets.activeTargets.find((t) => sameHost(new URL(t.scrapeUrl), gatewayUrl));
    if (!target) {
      return [
        {
          ok: false,
          what: `Prometheus at ${shown} has no scrape target for the gateway ${redactUrl(gatewayUrl)}`,
          fix: 'add a scrape job for the gateway with honor_labels: true (see examples/prometheus/prometheus.yml)',
        },
      ];
    }
    const checks: Check[] = [
      target.health === 'up'
        ? { ok: true, what: `Prometheus at ${shown} scrapes the gateway (job ${target.scrapePool})` }
        : {
            ok: false,
            what: `Prometheus at ${shown} fails to scrape the gateway (job ${target.scrapePool}): ${target.lastError || target.health}`,
            fix: 'check that Prometheus can reach the gateway',
          },
    ];
    const config = await prometheus.get<{ yaml: string }>('/api/v1/status/config');
    checks.push(
      honorsLabels(config.yaml, target.scrapePool)
        ? { ok: true, what: `scrape job ${target.scrapePool} has honor_labels: true` }
        : {
            ok: false,
            what: `scrape job ${target.scrapePool} lacks honor_labels: true: pushed job labels turn into exported_job`,
            fix: `add honor_labels: true to the scrape job ${target.scrapePool}`,
          },
    );
    return checks;
  } catch (error) {
    return [{ ok: false, what: (error as Error).message, fix: 'is --prometheus the address of a Prometheus server?' }];
  }
}

/**
 * Groups whose totals on the gateway are missing or below what Prometheus saw (a gateway restarted
 * without persistence, or from an old file): Prometheus would see those counters reset.
 */
async function totalsChecks(url: string, gateway: Gateway, job: string, timeoutMs: number): Promise<Check[]> {
  try {
    const prometheus = new Prometheus(url, timeoutMs);
    const seen = await prometheus.query(
      `max_over_time(${FAMILIES.deployments.name}{job=${JSON.stringify(job)}}[${CONTINUE_WINDOW}])`,
    );
    const groups = await gateway.readAllGroups();
    const byGroup = new Map<string, GroupState>();
    for (const sample of seen) {
      const key = JSON.stringify([sample.labels.service, sample.labels.environment]);
      const { job: _job, service: _service, environment: _environment, instance: _instance, ...labels } = sample.labels;
      const family = byGroup.get(key)?.get(FAMILIES.deployments.name) as ScalarFamily | undefined;
      if (family) family.series.push({ labels, value: sample.value });
      else
        byGroup.set(
          key,
          new Map([
            [FAMILIES.deployments.name, { ...FAMILIES.deployments, series: [{ labels, value: sample.value }] }],
          ]),
        );
    }
    const lowered: string[] = [];
    for (const [key, scraped] of byGroup) {
      const [service, environment] = JSON.parse(key) as [string, string];
      const held =
        groups.find((g) => g.labels.job === job && g.labels.service === service && g.labels.environment === environment)
          ?.state ?? new Map();
      if (loweredTotals(held, scraped).length) lowered.push(`${service} in ${environment}`);
    }
    if (lowered.length === 0)
      return [
        {
          ok: true,
          what: `every group's deployment totals on the gateway are at least what Prometheus saw in the last ${CONTINUE_WINDOW}`,
        },
      ];
    return [
      {
        ok: false,
        what: `${lowered.length} group(s) hold fewer deployments on the gateway than Prometheus saw (the gateway lost them: restarted without persistence, or from an old file): ${lowered.slice(0, 5).join(', ')}${lowered.length > 5 ? ', …' : ''}`,
        fix: `record the next deployment of each with DEPLOYCTL_PROMETHEUS_URL=${redactUrl(new URL(url))} set: deployctl continues its totals from Prometheus; run the gateway with --persistence.file`,
      },
    ];
  } catch (error) {
    return [{ ok: false, what: `could not compare the gateway's totals with Prometheus: ${(error as Error).message}` }];
  }
}

/**
 * `doctor`'s checks of the gateway: that it answers and keeps its metrics across restarts, and,
 * with --prometheus, that Prometheus scrapes it with honor_labels and saw no more than it holds.
 */
export async function gatewayChecks(gateway: Gateway, destination: Destination, job: string): Promise<Check[]> {
  const checks: Check[] = [];
  const started = performance.now();
  try {
    const version = await gateway.version();
    checks.push({
      ok: true,
      what: `gateway ${gateway.displayUrl('')} answers, version ${version ?? 'unknown'} (${Math.round(performance.now() - started)} ms)`,
    });
    const persistence = persistenceCheck(await gatewayFlags(gateway));
    if (persistence) checks.push(persistence);
  } catch (error) {
    checks.push({
      ok: false,
      what: (error as Error).message,
      fix: 'start the Pushgateway or fix --pushgateway / DEPLOYCTL_PUSHGATEWAY_URL',
    });
  }
  if (destination.prometheus) {
    const timeoutMs = destination.timeoutSeconds * 1000;
    checks.push(...(await prometheusChecks(destination.prometheus, gateway.base, timeoutMs)));
    checks.push(...(await totalsChecks(destination.prometheus, gateway, job, timeoutMs)));
  }
  return checks;
}
