import type { CommandContext } from '../context.js';
import { BAND_NAMES, BANDS, band, type KeyBands } from '../dora/bands.js';
import { doraQueries, selector } from '../dora/promql.js';
import { UsageError } from '../errors.js';
import { formatDuration, renderTable } from '../output.js';
import { parseWindow, Prometheus } from '../prometheus.js';

export interface DoraFlags {
  prometheus?: string;
  window?: string;
}

interface Key {
  value: number | null;
  band: string | null;
}

export interface DoraRow {
  job: string;
  service: string;
  environment: string;
  deployments: Record<string, number>;
  deploymentFrequencyPerDay: Key;
  leadTimeSeconds: Key;
  changeFailureRate: Key;
  timeToRestoreSeconds: Key;
}

/** Escapes a literal value for a PromQL string matcher used with =~. */
function literalRegex(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `deployctl dora`: the four keys per service and environment, from Prometheus. */
export async function doraCommand(flags: DoraFlags, { settings, reporter, env }: CommandContext): Promise<number> {
  const url = flags.prometheus ?? env.DEPLOYCTL_PROMETHEUS_URL;
  const window = flags.window ?? '30d';
  const days = parseWindow(window) / 86_400;
  const ledger = settings.remoteWrite ? (await import('../backends/remote-write/query.js')).ledgerQueryApi(settings, reporter) : undefined;
  if (!url && !ledger) throw new UsageError('--prometheus is required (or DEPLOYCTL_PROMETHEUS_URL)', 'the Prometheus that scrapes your Pushgateway, e.g. http://localhost:9090');
  const prometheus = ledger ?? new Prometheus(url!, settings.timeoutSeconds * 1000);

  const filters: Record<string, string> = { job: literalRegex(settings.job) };
  if (settings.service !== undefined) filters.service = literalRegex(settings.service);
  if (settings.environment !== undefined) filters.environment = literalRegex(settings.environment);
  const q = (ledger?.doraQueries ?? doraQueries)(selector(filters), window, String(days));
  const [byStatus, frequency, failureRate, leadTime, restore] = await Promise.all(
    [q.deploymentsByStatus, q.deploymentFrequencyPerDay, q.changeFailureRate, q.leadTimeMean, q.timeToRestoreMean].map((expr) => prometheus.query(expr)),
  ).finally(() => ledger?.close());

  const rows = new Map<string, DoraRow>();
  const rowOf = (labels: Record<string, string>) => {
    const key = JSON.stringify([labels.job, labels.service, labels.environment]);
    let row = rows.get(key);
    if (!row) {
      const empty = { value: null, band: null };
      row = {
        job: labels.job ?? '', service: labels.service ?? '', environment: labels.environment ?? '', deployments: {},
        deploymentFrequencyPerDay: empty, leadTimeSeconds: empty, changeFailureRate: empty, timeToRestoreSeconds: empty,
      };
      rows.set(key, row);
    }
    return row;
  };
  for (const s of byStatus!) rowOf(s.labels).deployments[s.labels.status ?? ''] = s.value;
  const fill = (samples: { labels: Record<string, string>; value: number }[], field: keyof Pick<DoraRow, 'deploymentFrequencyPerDay' | 'leadTimeSeconds' | 'changeFailureRate' | 'timeToRestoreSeconds'>, bands: KeyBands) => {
    for (const s of samples) {
      if (!Number.isFinite(s.value)) continue;
      rowOf(s.labels)[field] = { value: s.value, band: BAND_NAMES[band(bands, s.value)] };
    }
  };
  fill(frequency!, 'deploymentFrequencyPerDay', BANDS.deploymentFrequency);
  fill(leadTime!, 'leadTimeSeconds', BANDS.leadTime);
  fill(failureRate!, 'changeFailureRate', BANDS.changeFailureRate);
  fill(restore!, 'timeToRestoreSeconds', BANDS.timeToRestore);

  const result = [...rows.values()].sort((a, b) => a.service.localeCompare(b.service) || a.environment.localeCompare(b.environment));
  if (settings.json) {
    reporter.json({ window, rows: result });
    return 0;
  }
  if (result.length === 0) {
    reporter.info(`no deployments in the last ${window} on ${prometheus.base.origin}`);
    return 0;
  }
  const show = (key: Key, format: (v: number) => string) => (key.value === null ? '-' : `${format(key.value)} (${key.band})`);
  reporter.info(
    renderTable(
      ['SERVICE', 'ENVIRONMENT', 'DEPLOYMENTS', 'FREQUENCY', 'LEAD TIME', 'CHANGE FAILURE RATE', 'TIME TO RESTORE'],
      result.map((r) => [
        r.service,
        r.environment,
        String(Object.values(r.deployments).reduce((a, b) => a + b, 0)),
        show(r.deploymentFrequencyPerDay, (v) => `${Number(v.toFixed(2))}/day`),
        show(r.leadTimeSeconds, formatDuration),
        show(r.changeFailureRate, (v) => `${Number((v * 100).toFixed(1))}%`),
        show(r.timeToRestoreSeconds, formatDuration),
      ]),
    ) + `\n\nover the last ${window}; lead time and time to restore are means`,
  );
  return 0;
}
