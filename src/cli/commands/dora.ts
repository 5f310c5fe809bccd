import { Prometheus, parseWindow } from '../../adapters/prometheus.js';
import { BAND_NAMES, BANDS, band, type KeyBands } from '../../core/dora/bands.js';
import { doraQueries, selector } from '../../core/dora/promql.js';
import { DeployctlError, UsageError } from '../../core/errors.js';
import { FAMILIES } from '../../core/families.js';
import type { CommandContext } from '../context.js';
import { formatDuration } from '../output.js';
import { renderTable } from '../table.js';

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
  rollbacks: number;
  /** Null over a window shorter than a day: a few hours say nothing about a daily rate. */
  deploymentFrequencyPerDay: Key;
  leadTimeSeconds: Key;
  /** (failed deployments + rollbacks) ÷ finished deployments, as DORA counts failed changes. */
  changeFailureRate: Key;
  /** Failed ÷ finished deployments, rollbacks left out. */
  deploymentFailureRate: number | null;
  timeToRestoreSeconds: Key;
}

const DAY = 86_400;

/** Escapes a literal value for a PromQL string matcher used with =~. */
function literalRegex(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `deployctl dora`: the four keys per service and environment, from Prometheus. */
export async function doraCommand(flags: DoraFlags, { settings, reporter, env }: CommandContext): Promise<number> {
  const url = flags.prometheus ?? env.DEPLOYCTL_PROMETHEUS_URL;
  const window = flags.window ?? '30d';
  const days = parseWindow(window) / DAY;
  const ledger = settings.remoteWrite
    ? (await import('../../backends/remote-write/query.js')).ledgerQueryApi(settings, reporter)
    : undefined;
  if (!url && !ledger)
    throw new UsageError(
      '--prometheus is required (or DEPLOYCTL_PROMETHEUS_URL)',
      'the Prometheus that scrapes your Pushgateway, e.g. http://localhost:9090',
    );
  const prometheus = ledger ?? new Prometheus(url!, settings.timeoutSeconds * 1000);

  const filters: Record<string, string> = { job: literalRegex(settings.job) };
  if (settings.service !== undefined) filters.service = literalRegex(settings.service);
  if (settings.environment !== undefined) filters.environment = literalRegex(settings.environment);
  const q = (ledger?.doraQueries ?? doraQueries)(selector(filters), window, String(days));
  const [byStatus, rollbacks, frequency, failureRate, plainFailureRate, leadTime, restore] = await Promise.all(
    [
      q.deploymentsByStatus,
      q.rollbacks,
      q.deploymentFrequencyPerDay,
      q.changeFailureRate,
      q.deploymentFailureRate,
      q.leadTimeMean,
      q.timeToRestoreMean,
    ].map((expr) => (expr ? prometheus.query(expr) : Promise.resolve([]))),
  ).finally(() => ledger?.close());

  const rows = new Map<string, DoraRow>();
  const rowOf = (labels: Record<string, string>) => {
    const key = JSON.stringify([labels.job, labels.service, labels.environment]);
    let row = rows.get(key);
    if (!row) {
      const empty = { value: null, band: null };
      row = {
        job: labels.job ?? '',
        service: labels.service ?? '',
        environment: labels.environment ?? '',
        deployments: {},
        rollbacks: 0,
        deploymentFrequencyPerDay: empty,
        leadTimeSeconds: empty,
        changeFailureRate: empty,
        deploymentFailureRate: null,
        timeToRestoreSeconds: empty,
      };
      rows.set(key, row);
    }
    return row;
  };
  for (const s of byStatus!) rowOf(s.labels).deployments[s.labels.status ?? ''] = s.value;
  if (rows.size === 0 && !ledger) await explainNoData(prometheus as Prometheus, filters);
  for (const s of rollbacks!)
    if (rows.has(JSON.stringify([s.labels.job, s.labels.service, s.labels.environment])))
      rowOf(s.labels).rollbacks = s.value;
  for (const s of plainFailureRate!) if (Number.isFinite(s.value)) rowOf(s.labels).deploymentFailureRate = s.value;
  const fill = (
    samples: { labels: Record<string, string>; value: number }[],
    field: keyof Pick<
      DoraRow,
      'deploymentFrequencyPerDay' | 'leadTimeSeconds' | 'changeFailureRate' | 'timeToRestoreSeconds'
    >,
    bands: KeyBands,
  ) => {
    for (const s of samples) {
      if (!Number.isFinite(s.value)) continue;
      rowOf(s.labels)[field] = { value: s.value, band: BAND_NAMES[band(bands, s.value)] };
    }
  };
  const shortWindow = days < 1;
  if (!shortWindow) fill(frequency!, 'deploymentFrequencyPerDay', BANDS.deploymentFrequency);
  fill(leadTime!, 'leadTimeSeconds', BANDS.leadTime);
  fill(failureRate!, 'changeFailureRate', BANDS.changeFailureRate);
  fill(restore!, 'timeToRestoreSeconds', BANDS.timeToRestore);

  const result = [...rows.values()].sort(
    (a, b) => a.service.localeCompare(b.service) || a.environment.localeCompare(b.environment),
  );
  if (settings.json) {
    reporter.json({ window, rows: result });
    return 0;
  }
  if (result.length === 0) {
    reporter.info(`no deployments in the last ${window} on ${prometheus.base.origin}`);
    return 0;
  }
  const show = (key: Key, format: (v: number) => string) =>
    key.value === null ? '-' : `${format(key.value)} (${key.band})`;
  const percent = (v: number) => `${Number((v * 100).toFixed(1))}%`;
  reporter.info(
    renderTable(
      [
        'SERVICE',
        'ENVIRONMENT',
        'DEPLOYMENTS',
        'ROLLBACKS',
        'FREQUENCY',
        'LEAD TIME',
        'CHANGE FAILURE RATE',
        'FAILED DEPLOYS',
        'TIME TO RESTORE',
      ],
      result.map((r) => [
        r.service,
        r.environment,
        String(Object.values(r.deployments).reduce((a, b) => a + b, 0)),
        String(r.rollbacks),
        shortWindow
          ? `${r.deployments.success ?? 0} in ${window}`
          : show(r.deploymentFrequencyPerDay, (v) => `${Number(v.toFixed(2))}/day`),
        show(r.leadTimeSeconds, formatDuration),
        show(r.changeFailureRate, percent),
        r.deploymentFailureRate === null ? '-' : percent(r.deploymentFailureRate),
        show(r.timeToRestoreSeconds, formatDuration),
      ]),
    ) +
      `\n\nover the last ${window}; lead time and time to restore are means; the change failure rate counts failed deployments and rollbacks` +
      (shortWindow ? `; a window shorter than a day gives no daily frequency or band: use --window 1d or more` : ''),
  );
  return 0;
}

/**
 * No deployment matched. When Prometheus holds deployctl's series under `exported_job`, it scrapes
 * the gateway without `honor_labels: true`: say so and how to fix it, instead of "no deployments".
 */
async function explainNoData(prometheus: Prometheus, filters: Record<string, string>): Promise<void> {
  const { job, ...rest } = filters;
  const exported = await prometheus.query(
    `count by (exported_job, job) (${FAMILIES.deployments.name}${selector({ ...rest, exported_job: job ?? '.*' })})`,
  );
  const scrapeJob = exported[0]?.labels.job;
  if (scrapeJob !== undefined) {
    throw new DeployctlError(
      `Prometheus holds deployctl's series with the job label renamed to exported_job (scrape job ${JSON.stringify(scrapeJob)}): it scrapes the Pushgateway without honor_labels`,
      1,
      `add honor_labels: true to the scrape job ${JSON.stringify(scrapeJob)} (see examples/prometheus/prometheus.yml); series scraped before the change keep exported_job`,
    );
  }
}
