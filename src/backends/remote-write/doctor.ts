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
 * Whether the store takes backfilled samples and keeps a retried one once: VictoriaMetrics shows
 * its flags on /flags; Prometheus its configuration (with the out-of-order window) on
 * /api/v1/status/config. Other stores do not say.
 */
async function storeSettingsCheck(client: RemoteWriteClient): Promise<Check> {
  const flags = await client.getBelowQueryApi('/flags');
  if (flags?.status === 200 && flags.body.includes('dedup.minScrapeInterval')) {
    const dedup = /dedup\.minScrapeInterval="?([^"\s]*)"?/.exec(flags.body)?.[1] ?? '';
    return /^0s?$|^$/.test(dedup)
      ? {
          ok: false,
          what: 'VictoriaMetrics keeps a retried sample twice (no deduplication)',
          fix: 'start it with -dedup.minScrapeInterval=1ms so that a write retried after a lost answer counts once',
        }
      : {
          ok: true,
          what: `VictoriaMetrics deduplicates retried samples (-dedup.minScrapeInterval=${dedup}) and takes old samples within its retention`,
        };
  }
  const config = await client.getBelowQueryApi('/api/v1/status/config');
  if (config?.status === 200) {
    const window = outOfOrderWindow((JSON.parse(config.body) as { data?: { yaml?: string } }).data?.yaml ?? '');
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
