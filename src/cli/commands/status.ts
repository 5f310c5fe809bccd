import { openGateway } from '../../backends/pushgateway/client.js';
import type { GroupState, ScalarFamily } from '../../backends/pushgateway/model.js';
import { FAMILIES } from '../../core/families.js';
import type { CommandContext } from '../context.js';
import { formatAgo, formatDuration } from '../output.js';
import { renderTable } from '../table.js';

export interface GroupStatus {
  job: string;
  service: string;
  environment: string;
  version: string;
  commit: string;
  status: string;
  /** Unix seconds, or null when the group has no finished deployment yet. */
  finishedAt: number | null;
  durationSeconds: number | null;
  inProgress: boolean;
  /** Unix seconds: when the deployment in progress started, or null. */
  startedAt: number | null;
  deployments: Record<string, number>;
  rollbacks: number;
}

function gauge(state: GroupState, name: string): number | undefined {
  return (state.get(name) as ScalarFamily | undefined)?.series[0]?.value;
}

/** The latest deployment of one group, from what the gateway holds. */
export function groupStatus(labels: Record<string, string>, state: GroupState): GroupStatus {
  const info = (state.get(FAMILIES.info.name) as ScalarFamily | undefined)?.series[0]?.labels ?? {};
  const deployments: Record<string, number> = {};
  for (const series of (state.get(FAMILIES.deployments.name) as ScalarFamily | undefined)?.series ?? []) {
    const status = series.labels.status ?? '';
    deployments[status] = (deployments[status] ?? 0) + series.value;
  }
  const finishedAt = gauge(state, FAMILIES.lastDeployment.name);
  const duration = gauge(state, FAMILIES.lastDuration.name);
  const inProgress = gauge(state, FAMILIES.inProgress.name) === 1;
  const startedAt = gauge(state, FAMILIES.startedAt.name);
  return {
    job: labels.job ?? '',
    service: labels.service ?? '',
    environment: labels.environment ?? '',
    version: info.version ?? '',
    commit: info.commit ?? '',
    status: info.status ?? '',
    finishedAt: finishedAt ?? null,
    durationSeconds: duration === undefined || Number.isNaN(duration) ? null : duration,
    inProgress,
    startedAt: inProgress && startedAt ? startedAt : null,
    deployments,
    rollbacks: gauge(state, FAMILIES.rollbacks.name) ?? 0,
  };
}

/** `deployctl status`: the latest deployment of each service and environment on the gateway. */
export async function statusCommand({ settings, reporter, now }: CommandContext): Promise<number> {
  const ledger = settings.remoteWrite
    ? await (await import('../../backends/remote-write/status.js')).ledgerGroups(settings, reporter)
    : undefined;
  const gateway = openGateway(settings, reporter);
  try {
    const groups = (
      ledger?.groups ??
      (await gateway.readAllGroups())
        .filter(
          ({ labels, state }) =>
            labels.job === settings.job &&
            (state.has(FAMILIES.deployments.name) || state.has(FAMILIES.inProgress.name)),
        )
        .filter(({ labels }) => settings.service === undefined || labels.service === settings.service)
        .filter(({ labels }) => settings.environment === undefined || labels.environment === settings.environment)
        .map(({ labels, state }) => groupStatus(labels, state))
    ).sort((a, b) => (b.finishedAt ?? 0) - (a.finishedAt ?? 0) || a.service.localeCompare(b.service));
    if (settings.json) {
      reporter.json(groups);
      return 0;
    }
    if (groups.length === 0) {
      reporter.info(`no deployments recorded on ${ledger?.shown ?? gateway.displayUrl('')} for job ${settings.job}`);
      return 0;
    }
    const iso = (seconds: number) => new Date(seconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
    const rows = groups.map((g) => [
      g.service,
      g.environment,
      g.version,
      g.inProgress
        ? `${g.status || '-'} (deploying${g.startedAt === null ? '' : ` since ${iso(g.startedAt)}, ${formatAgo(now() - g.startedAt)}`})`
        : g.status,
      g.finishedAt === null ? '' : iso(g.finishedAt),
      g.finishedAt === null ? '' : formatAgo(now() - g.finishedAt),
      g.durationSeconds === null ? '' : formatDuration(g.durationSeconds),
      [
        ...Object.entries(g.deployments).map(([s, n]) => `${n} ${s}`),
        ...(g.rollbacks > 0 ? [`${g.rollbacks} rollback${g.rollbacks === 1 ? '' : 's'}`] : []),
      ].join(', '),
    ]);
    reporter.info(
      renderTable(['SERVICE', 'ENVIRONMENT', 'VERSION', 'STATUS', 'FINISHED', 'AGO', 'TOOK', 'DEPLOYMENTS'], rows),
    );
    return 0;
  } finally {
    gateway.close();
  }
}
