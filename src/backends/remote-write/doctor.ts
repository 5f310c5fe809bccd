import snappy from 'snappyjs';
import type { Check } from '../backend.js';
import type { RemoteWriteClient } from './client.js';
import { encodeWriteRequest } from './protobuf.js';

const OUT_OF_ORDER_FIX =
  "records finished in the past (--finished-at, kept records sent later, concurrent machines) need the store's out-of-order window: " +
  'Prometheus storage.tsdb.out_of_order_time_window in its config file, Mimir out_of_order_time_window per tenant (Amazon Managed Prometheus allows at most 10m)';

/** The out-of-order window in a Prometheus configuration as /api/v1/status/config shows it. */
export function outOfOrderWindow(configYaml: string): string | undefined {
  const match = /\n\s+out_of_order_time_window: (\S+)/.exec(`\n${configYaml}`);
  return match?.[1];
}

/**
 * VictoriaMetrics' /flags page: a `-name="value"` line for each flag it was started with (a flag
 * it does not list has its default). Undefined when the answer is not such a page (Prometheus
 * has no /flags, or serves its web UI there).
 */
export function victoriaMetricsFlags(
  page: { status: number; body: string } | undefined,
): Map<string, string> | undefined {
  if (page?.status !== 200) return undefined;
  const flags = new Map<string, string>();
  for (const line of page.body.split('\n')) {
    if (!line.trim()) continue;
    const match = /^-([A-Za-z][\w.-]*)=(.*)$/.exec(line.trim());
    if (!match) return undefined;
    flags.set(match[1]!, match[2]!.replace(/^"(.*)"$/, '$1'));
  }
  return flags;
}

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };

/** A duration flag as Go writes it (`1ms`, `30s`, `1m30s`, `0`) in milliseconds; NaN when it is not one. */
export function durationMs(value: string): number {
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (parts.map((p) => p[0]).join('') !== value || parts.length === 0) return Number.NaN;
  return parts.reduce((ms, [, n, unit]) => ms + Number(n) * UNIT_MS[unit!]!, 0);
}

/** VictoriaMetrics takes old samples within its retention; what matters is that a retried sample counts once. */
function victoriaMetricsCheck(flags: Map<string, string>): Check {
  const dedup = flags.get('dedup.minScrapeInterval');
  const ms = dedup === undefined ? 0 : durationMs(dedup);
  if (!(ms > 0))
    return {
      ok: false,
      what: `VictoriaMetrics keeps a retried sample twice (no deduplication: -dedup.minScrapeInterval is ${dedup === undefined ? 'not set' : dedup})`,
      fix: 'start it with -dedup.minScrapeInterval=1ms so that a write retried after a lost answer counts once',
    };
  if (ms > 1)
    return {
      ok: false,
      warning: true,
      what: `VictoriaMetrics keeps one sample per series in each ${dedup} (-dedup.minScrapeInterval=${dedup}): two deployments of one group and status that finish within it count once`,
      fix: 'start it with -dedup.minScrapeInterval=1ms: a retried sample still counts once, and no deployment is merged into another',
    };
  return {
    ok: true,
    what: `VictoriaMetrics deduplicates retried samples (-dedup.minScrapeInterval=${dedup}) and takes old samples within its retention`,
  };
}

/**
 * Whether the store takes backfilled samples and keeps a retried one once: VictoriaMetrics shows
 * the flags it was started with on /flags; Prometheus its configuration (with the out-of-order
 * window) on /api/v1/status/config. Other stores do not say.
 */
async function storeSettingsCheck(client: RemoteWriteClient): Promise<Check> {
  const flags = victoriaMetricsFlags(await client.getBelowQueryApi('/flags'));
  if (flags) return victoriaMetricsCheck(flags);
  const config = await client.getBelowQueryApi('/api/v1/status/config');
  // Prometheus's configuration is never empty (it has its global section at least).
  const yaml = config?.status === 200 ? configYaml(config.body) : '';
  if (yaml.trim()) {
    const window = outOfOrderWindow(yaml);
    return window === undefined || /^0s?$/.test(window)
      ? {
          ok: false,
          what: 'Prometheus has no out-of-order window: it refuses a record older than the newest one of its series',
          fix: OUT_OF_ORDER_FIX,
        }
      : { ok: true, what: `Prometheus takes samples up to ${window} old (out_of_order_time_window)` };
  }
  return {
    ok: true,
    what: 'the store does not show its out-of-order window or deduplication here',
    fix: OUT_OF_ORDER_FIX,
  };
}

/** The configuration YAML in an answer of /api/v1/status/config, or '' when the answer is not one. */
function configYaml(body: string): string {
  try {
    const yaml = (JSON.parse(body) as { data?: { yaml?: unknown } }).data?.yaml;
    return typeof yaml === 'string' ? yaml : '';
  } catch {
    return '';
  }
}

/** `doctor`'s checks of a remote-write destination: the endpoint, the query API, and the store's settings for backfill and retries. */
export async function remoteWriteChecks(client: RemoteWriteClient): Promise<Check[]> {
  const checks: Check[] = [];
  {
    const started = performance.now();
    try {
      await client.write(snappy.compress(Buffer.from(encodeWriteRequest([]))));
      checks.push({
        ok: true,
        what: `remote-write ${client.displayUrl} takes an empty write request (${Math.round(performance.now() - started)} ms)`,
      });
    } catch (error) {
      checks.push({
        ok: false,
        what: (error as Error).message,
        fix: (error as { hint?: string }).hint ?? 'fix --remote-write / DEPLOYCTL_REMOTE_WRITE_URL',
      });
    }

    if (!client.queryBase) {
      checks.push({
        ok: false,
        what: `no query API is known for ${client.displayUrl}: lead time and time to restore cannot read earlier deployments`,
        fix: 'give --prometheus or DEPLOYCTL_PROMETHEUS_URL',
      });
    } else {
      try {
        await client.vector('vector(1)');
        checks.push({ ok: true, what: `query API ${client.queryBase.toString()} answers` });
        checks.push(await storeSettingsCheck(client));
      } catch (error) {
        checks.push({
          ok: false,
          what: (error as Error).message,
          fix: "give the store's Prometheus query API with --prometheus or DEPLOYCTL_PROMETHEUS_URL",
        });
      }
    }

    return checks;
  }
}
