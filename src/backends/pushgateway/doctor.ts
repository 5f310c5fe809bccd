import { type EndpointTls, redactUrl, trustOnly } from '../../adapters/http-endpoint.js';
import { Prometheus, type Sample } from '../../adapters/prometheus.js';
import { BOOKKEEPING_DROP_REGEX, FAMILIES, PER_DEPLOYMENT_BOOKKEEPING } from '../../core/families.js';
import type { Check, Destination } from '../backend.js';
import type { Gateway } from './client.js';
import { loweredTotals, quoted, snapshotState } from './lost-totals.js';
import {
  CONTINUE_WINDOW,
  findGatewayTarget,
  type GatewayTarget,
  gatewayStatus,
  lastScrapeBeforeStart,
  TELL_APART_FIX,
} from './scraped-totals.js';

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

/** The block of the scrape job named `job` in Prometheus's loaded configuration (as /api/v1/status/config gives it). */
function jobBlock(configYaml: string, job: string): string | undefined {
  const blocks = configYaml.split(/\n(?=- job_name: )/);
  return blocks.find((b) => b.startsWith(`- job_name: ${job}\n`) || b.includes(`\n- job_name: ${job}\n`));
}

/** Whether the scrape job keeps pushed labels. */
function honorsLabels(block: string | undefined): boolean {
  return block !== undefined && /\n\s+honor_labels: true\n/.test(`${block}\n`);
}

/** A scalar as Prometheus's configuration dump writes it: plain, or in single or double quotes. */
function unquote(value: string): string {
  if (value.startsWith("'") && value.endsWith("'")) return value.slice(1, -1).replace(/''/g, "'");
  if (value.startsWith('"') && value.endsWith('"')) {
    try {
      return JSON.parse(value) as string;
    } catch {
      return value.slice(1, -1);
    }
  }
  return value;
}

/** The rules of the job's metric_relabel_configs, each as its keys and (unquoted) values. */
function metricRelabelRules(block: string): Record<string, string>[] {
  const lines = block.split('\n');
  const start = lines.indexOf('  metric_relabel_configs:');
  if (start < 0) return [];
  const rules: Record<string, string>[] = [];
  for (const line of lines.slice(start + 1)) {
    const item = line.startsWith('  - ') ? line.slice(4) : line.startsWith('    ') ? line.trim() : undefined;
    if (item === undefined) break;
    if (line.startsWith('  - ')) rules.push({});
    const colon = item.indexOf(': ');
    if (colon > 0 && rules.length) rules[rules.length - 1]![item.slice(0, colon)] = unquote(item.slice(colon + 2));
  }
  return rules;
}

/**
 * The bookkeeping families that grow a series per deployment and that the scrape job `job` of
 * Prometheus's loaded configuration still keeps: its metric_relabel_configs are followed for a
 * series of each name (rules on the name alone; any other rule is taken to keep it).
 */
export function keptBookkeeping(configYaml: string, job: string): string[] {
  const block = jobBlock(configYaml, job);
  const rules = block === undefined ? [] : metricRelabelRules(block);
  return PER_DEPLOYMENT_BOOKKEEPING.map((d) => d.name).filter((name) => {
    for (const rule of rules) {
      if (rule.source_labels !== '[__name__]') continue;
      let regex: RegExp;
      try {
        regex = new RegExp(`^(?:${rule.regex ?? '(.*)'})$`);
      } catch {
        continue;
      }
      if (rule.action === 'drop' && regex.test(name)) return false;
      if (rule.action === 'keep' && !regex.test(name)) return false;
    }
    return true;
  });
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z');

/**
 * Groups this gateway lost: those Prometheus scraped from it (its scrape target's labels) in its
 * last scrape before the gateway's current process started, with more deployments than the gateway
 * holds now. A group that was gone from that scrape was deleted before the restart (retired), and
 * one that went while the gateway ran on was deleted too: neither is lost. Another gateway's groups
 * are never this one's.
 */
async function totalsChecks(
  prometheus: Prometheus,
  gateway: Gateway,
  job: string,
  target: GatewayTarget,
  startedAt: number | undefined,
): Promise<Check[]> {
  try {
    if (startedAt === undefined)
      return [
        {
          ok: false,
          warning: true,
          what: 'the gateway does not say when it started (/api/v1/status): groups it lost in a restart cannot be told from deleted ones',
        },
      ];
    const now = Date.now() / 1000;
    const before = await lastScrapeBeforeStart(prometheus, target, startedAt, now);
    const where = `job ${quoted(target.scrapePool)}, instance ${quoted(target.instance)}`;
    if (before === undefined) {
      const started = await prometheus.query(
        `count_over_time(process_start_time_seconds{job=${JSON.stringify(target.job)}, instance=${JSON.stringify(target.instance)}}[${CONTINUE_WINDOW}])`,
      );
      if (started.length === 0)
        return [
          {
            ok: false,
            warning: true,
            what: `Prometheus holds no process_start_time_seconds of the gateway (${where}): a restart that lost groups cannot be told from a delete`,
            fix: `keep the gateway's own process_* metrics in the scrape job ${target.scrapePool}`,
          },
        ];
      return [
        {
          ok: true,
          what: `every group's deployment totals on the gateway are at least what Prometheus saw: it saw the gateway run without a restart in the last ${CONTINUE_WINDOW}`,
        },
      ];
    }
    const matchers = Object.entries({ job, ...target.matchers })
      .map(([name, value]) => `${name}=${JSON.stringify(value)}`)
      .join(', ');
    const [seen, groups] = await Promise.all([
      prometheus.query(`${FAMILIES.deployments.name}{${matchers}} @ ${before.toFixed(3)}`),
      gateway.readAllGroups(),
    ]);
    const byGroup = new Map<string, Sample[]>();
    for (const sample of seen) {
      const key = JSON.stringify([sample.labels.service ?? '', sample.labels.environment ?? '']);
      byGroup.set(key, [...(byGroup.get(key) ?? []), sample]);
    }
    const lowered: string[] = [];
    const refused: string[] = [];
    for (const [key, samples] of byGroup) {
      const [service, environment] = JSON.parse(key) as [string, string];
      const grouping = { job, service, environment };
      const scraped = snapshotState(samples, { grouping, matchers: target.matchers, now });
      if (scraped.refused.length) refused.push(...scraped.refused);
      const held =
        groups.find((g) => g.labels.job === job && g.labels.service === service && g.labels.environment === environment)
          ?.state ?? new Map();
      if (loweredTotals(held, scraped.state).length) lowered.push(`${service} in ${environment}`);
    }
    const checks: Check[] = [];
    if (refused.length)
      checks.push({
        ok: false,
        warning: true,
        what: `Prometheus answered deployment totals that no gateway holds, left out: ${refused.slice(0, 3).join('; ')}${refused.length > 3 ? '; …' : ''}`,
      });
    if (lowered.length === 0)
      return [
        ...checks,
        {
          ok: true,
          what: `every group's deployment totals on the gateway are at least what Prometheus saw of them before the gateway restarted at ${iso(startedAt)}`,
        },
      ];
    return [
      ...checks,
      {
        ok: false,
        what: `${lowered.length} group(s) hold fewer deployments on the gateway than Prometheus saw before the gateway restarted at ${iso(startedAt)} (the gateway lost them: it restarted without persistence, or from an old file): ${lowered.slice(0, 5).join(', ')}${lowered.length > 5 ? ', …' : ''}`,
        fix: `record the next deployment of each with DEPLOYCTL_PROMETHEUS_URL=${redactUrl(prometheus.base)} set: deployctl continues its totals from Prometheus; run the gateway with --persistence.file`,
      },
    ];
  } catch (error) {
    return [{ ok: false, what: `could not compare the gateway's totals with Prometheus: ${(error as Error).message}` }];
  }
}

/**
 * With --prometheus: that Prometheus scrapes the gateway, with honor_labels, dropping deployctl's
 * per-deployment bookkeeping, telling this gateway's series from another gateway's; and which
 * groups the gateway lost.
 */
async function prometheusChecks(
  url: string,
  gateway: Gateway,
  job: string,
  timeoutMs: number,
  startedAt: number | undefined,
  tls: EndpointTls,
): Promise<Check[]> {
  const prometheus = new Prometheus(url, timeoutMs, undefined, {}, tls);
  const shown = redactUrl(prometheus.base);
  try {
    const target = await findGatewayTarget(prometheus, gateway.base);
    if (!target) {
      return [
        {
          ok: false,
          what: `Prometheus at ${shown} has no scrape target for the gateway ${redactUrl(gateway.base)}`,
          fix: 'add a scrape job for the gateway with honor_labels: true (see examples/prometheus/prometheus.yml)',
        },
      ];
    }
    const pool = target.scrapePool;
    const checks: Check[] = [
      target.health === 'up'
        ? { ok: true, what: `Prometheus at ${shown} scrapes the gateway (job ${pool})` }
        : {
            ok: false,
            what: `Prometheus at ${shown} fails to scrape the gateway (job ${pool}): ${target.lastError || target.health}`,
            fix: 'check that Prometheus can reach the gateway',
          },
    ];
    const config = await prometheus.get<{ yaml: string }>('/api/v1/status/config');
    const block = jobBlock(config.yaml, pool);
    checks.push(
      honorsLabels(block)
        ? { ok: true, what: `scrape job ${pool} has honor_labels: true` }
        : {
            ok: false,
            what: `scrape job ${pool} lacks honor_labels: true: pushed job labels turn into exported_job`,
            fix: `add honor_labels: true to the scrape job ${pool}`,
          },
    );
    const kept = keptBookkeeping(config.yaml, pool);
    checks.push(
      kept.length === 0
        ? {
            ok: true,
            what: `scrape job ${pool} drops deployctl's per-deployment bookkeeping (record ids, deployed commits, remembered deployments and incidents)`,
          }
        : {
            ok: false,
            what: `scrape job ${pool} keeps ${kept.join(' and ')}: deployctl's bookkeeping of record ids, deployed commits and remembered deployments and incidents, which adds new series to Prometheus with every deployment`,
            fix: `add to the scrape job ${pool}: metric_relabel_configs: [{source_labels: [__name__], regex: '${BOOKKEEPING_DROP_REGEX}', action: drop}] (see examples/prometheus/prometheus.yml)`,
          },
    );
    const labels = Object.entries(target.matchers).map(([name, value]) => `${name}=${quoted(value)}`);
    checks.push(
      target.ambiguous
        ? {
            ok: false,
            what: `Prometheus cannot tell what it scraped from this gateway: ${target.ambiguous}`,
            fix: TELL_APART_FIX,
          }
        : {
            ok: true,
            what: labels.length
              ? `the series Prometheus scrapes from this gateway carry ${labels.join(', ')}: they are told from another gateway's`
              : "Prometheus scrapes no other gateway that holds groups: the deployctl series it holds are this gateway's",
          },
    );
    if (!target.ambiguous) checks.push(...(await totalsChecks(prometheus, gateway, job, target, startedAt)));
    return checks;
  } catch (error) {
    return [{ ok: false, what: (error as Error).message, fix: 'is --prometheus the address of a Prometheus server?' }];
  }
}

/**
 * `doctor`'s checks of the gateway: that it answers and keeps its metrics across restarts, and,
 * with --prometheus, that Prometheus scrapes it well and which groups it lost.
 */
export async function gatewayChecks(gateway: Gateway, destination: Destination, job: string): Promise<Check[]> {
  const checks: Check[] = [];
  const started = performance.now();
  let startedAt: number | undefined;
  try {
    const version = await gateway.version();
    checks.push({
      ok: true,
      what: `gateway ${gateway.displayUrl('')} answers, version ${version ?? 'unknown'} (${Math.round(performance.now() - started)} ms)`,
    });
    const status = await gatewayStatus(gateway).catch(() => ({}) as Awaited<ReturnType<typeof gatewayStatus>>);
    startedAt = status.startedAt;
    const persistence = persistenceCheck(status.flags);
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
    checks.push(
      ...(await prometheusChecks(
        destination.prometheus,
        gateway,
        job,
        timeoutMs,
        startedAt,
        trustOnly(destination.tls),
      )),
    );
  }
  return checks;
}
