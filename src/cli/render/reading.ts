// What the reading commands (status, dora, doctor, delete) show, from the data they return; loaded
// only by them, so that a record pays nothing for tables.
import { deleteExitCode, doctorExitCode, ExitCode } from '../../core/exit-codes.js';
import type { DeleteView } from '../commands/delete.js';
import type { DoctorView } from '../commands/doctor.js';
import type { DoraView } from '../commands/dora.js';
import type { StatusView } from '../commands/status.js';
import type { Settings } from '../settings.js';
import { formatAgo, formatDuration, type Reporter } from './output.js';
import { renderTable } from './table.js';

export type ReadingView = StatusView | DoraView | DoctorView | DeleteView;

type Shown = Pick<Settings, 'json'>;

const iso = (seconds: number) => new Date(seconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z');

function renderStatus(view: StatusView, settings: Shown, reporter: Reporter, now: number): void {
  const { groups } = view;
  if (settings.json) {
    reporter.json(groups);
    return;
  }
  if (groups.length === 0) {
    reporter.info(`no deployments recorded on ${view.shownUrl} for job ${view.job}`);
    return;
  }
  const rows = groups.map((g) => [
    g.service,
    g.environment,
    g.version,
    g.inProgress
      ? `${g.status || '-'} (deploying${g.startedAt === null ? '' : ` since ${iso(g.startedAt)}, ${formatAgo(now - g.startedAt)}`})`
      : g.status,
    g.finishedAt === null ? '' : iso(g.finishedAt),
    g.finishedAt === null ? '' : formatAgo(now - g.finishedAt),
    g.durationSeconds === null ? '' : formatDuration(g.durationSeconds),
    [
      ...Object.entries(g.deployments).map(([s, n]) => `${n} ${s}`),
      ...(g.rollbacks > 0 ? [`${g.rollbacks} rollback${g.rollbacks === 1 ? '' : 's'}`] : []),
      ...(g.failedChanges > 0 ? [`${g.failedChanges} failed change${g.failedChanges === 1 ? '' : 's'}`] : []),
    ].join(', '),
    health(g, now),
  ]);
  const headers = ['SERVICE', 'ENVIRONMENT', 'VERSION', 'STATUS', 'FINISHED', 'AGO', 'TOOK', 'DEPLOYMENTS', 'HEALTH'];
  // HEALTH only when a group has something to say there: no empty column on a narrow terminal.
  const healthy = rows.every((row) => row.at(-1) === '');
  reporter.info(
    healthy
      ? renderTable(
          headers.slice(0, -1),
          rows.map((row) => row.slice(0, -1)),
        )
      : renderTable(headers, rows),
  );
}

/** Open incidents and the latest verification of a group; what needs a look is marked with ✖. */
function health(g: StatusView['groups'][number], now: number): string {
  const parts: string[] = [];
  const { count, since } = g.openIncidents;
  if (count > 0)
    parts.push(
      `✖ ${count} open incident${count === 1 ? '' : 's'}${since === null ? '' : ` since ${iso(since)} (${formatAgo(now - since)})`}`,
    );
  const verification = g.latestVerification;
  if (verification) {
    const mark = verification.result === 'pass' ? '' : '✖ ';
    parts.push(`${mark}verify ${verification.result} ${formatAgo(now - verification.at)}`);
  }
  return parts.join('; ');
}

/** A count of failed changes with its reasons: "2 (1 failure, 1 rollback)". */
function byReason(total: number, reasons: Record<string, number>): string {
  const known = Object.entries(reasons).filter(([, n]) => n > 0);
  return known.length ? `${total} (${known.map(([reason, n]) => `${n} ${reason}`).join(', ')})` : String(total);
}

function renderDora(view: DoraView, settings: Shown, reporter: Reporter): void {
  const { window, rows, shortWindow } = view;
  if (settings.json) {
    reporter.json({ window, rows });
    return;
  }
  if (rows.length === 0) {
    reporter.info(`no deployments in the last ${window} on ${view.shownUrl}`);
    return;
  }
  const show = (key: { value: number | null; band: string | null }, format: (v: number) => string) =>
    key.value === null ? '-' : `${format(key.value)} (${key.band})`;
  const percent = (v: number) => `${Number((v * 100).toFixed(1))}%`;
  reporter.info(
    renderTable(
      [
        'SERVICE',
        'ENVIRONMENT',
        'DEPLOYMENTS',
        'FAILED CHANGES',
        'FREQUENCY',
        'LEAD TIME',
        'CHANGE FAILURE RATE',
        'RECOVERY TIME',
        'REWORK RATE',
      ],
      rows.map((r) => [
        r.service,
        r.environment,
        String(Object.values(r.deployments).reduce((a, b) => a + b, 0)),
        byReason(r.failedChanges, r.failedChangesByReason),
        shortWindow
          ? `${r.deployments.success ?? 0} in ${window}`
          : show(r.deploymentFrequencyPerDay, (v) => `${Number(v.toFixed(2))}/day`),
        show(r.leadTimeSeconds, formatDuration),
        show(r.changeFailureRate, percent),
        show(r.failedDeploymentRecoveryTimeSeconds, formatDuration),
        r.deploymentReworkRate.value === null ? '-' : percent(r.deploymentReworkRate.value),
      ]),
    ) +
      `\n\nover the last ${window}; a failed change is a deployment that failed, was rolled back, failed a verify or had an incident, counted once; lead time and recovery time are means` +
      (shortWindow ? `; a window shorter than a day gives no daily frequency or band: use --window 1d or more` : ''),
  );
}

function renderDoctor(view: DoctorView, settings: Shown, reporter: Reporter): void {
  const { config, checks, wouldPush, problems } = view;
  if (settings.json) {
    reporter.json({ config, checks, wouldPush, problems });
    return;
  }
  const lines = [
    `deployctl ${config.version} on node ${config.node}`,
    `config file   ${config.configFile ?? '(none found)'}`,
    ...(['pushgateway', 'job', 'service', 'environment', 'timeoutSeconds', 'strict'] as const).map((key) => {
      const { value, from } = config[key];
      return `${key.replace('Seconds', '').padEnd(13)} ${value ?? '-'}  (${from})`;
    }),
    `state dir     ${config.stateDir}`,
    `auth          ${config.auth}${config.headers.length ? `; headers ${config.headers.join(', ')}` : ''}`,
    `tls           ${config.tls}`,
    '',
    ...checks.flatMap((c) => [
      `${c.ok ? '✔' : c.warning ? '!' : '✖'} ${c.what}`,
      ...(c.fix ? [`  fix: ${c.fix}`] : []),
    ]),
  ];
  if (wouldPush)
    lines.push(
      '',
      `a first record of ${view.service} in ${view.environment} would push (deployctl record --dry-run shows the exact text):`,
      wouldPush.trimEnd(),
    );
  reporter.info(lines.join('\n'));
}

function renderDelete(view: DeleteView, settings: Shown, reporter: Reporter): void {
  if (view.plan !== undefined) {
    reporter.raw(`${view.plan}\n`);
    return;
  }
  if (view.declined) {
    reporter.info('nothing deleted');
    return;
  }
  if (settings.json) reporter.json({ deleted: true, ...view.deleted });
  else reporter.info(`deleted ${view.what}`);
}

/** Shows what a reading command found, and says the exit code it ends with. */
export function renderReading(view: ReadingView, settings: Shown, reporter: Reporter, now: number): number {
  switch (view.kind) {
    case 'status':
      renderStatus(view, settings, reporter, now);
      return ExitCode.ok;
    case 'dora':
      renderDora(view, settings, reporter);
      return ExitCode.ok;
    case 'doctor':
      renderDoctor(view, settings, reporter);
      return doctorExitCode(view.problems);
    case 'delete':
      renderDelete(view, settings, reporter);
      return deleteExitCode(view.declined);
  }
}
