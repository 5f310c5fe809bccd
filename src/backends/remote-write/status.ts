import type { GroupStatus } from '../../cli/commands/status.js';
import type { Reporter } from '../../cli/output.js';
import type { Settings } from '../../cli/settings.js';
import { GROUP, selector } from '../../core/dora/promql.js';
import { HISTORY_LOOKBACK, LEDGER } from './ledger.js';
import { inProgressQuery } from './promql.js';
import { ledgerQueryApi } from './query.js';

const keyOf = (labels: Record<string, string>) => JSON.stringify([labels.job, labels.service, labels.environment]);

/**
 * The latest deployment of each group, from the store's query API: the version series with the
 * latest finish time, deployments by status over HISTORY_LOOKBACK, and any start not finished.
 * The duration of the last deployment is not read (null).
 */
export async function ledgerGroups(
  settings: Settings,
  reporter: Reporter,
): Promise<{ groups: GroupStatus[]; shown: string }> {
  const api = ledgerQueryApi(settings, reporter);
  const filters: Record<string, string> = { job: settings.job };
  if (settings.service !== undefined) filters.service = settings.service;
  if (settings.environment !== undefined) filters.environment = settings.environment;
  const sel = selector(filters, '=');
  try {
    const [versions, counts, inProgress] = await Promise.all([
      api.query(`max_over_time(${LEDGER.version}${sel}[${HISTORY_LOOKBACK}])`),
      api.query(`sum by (${GROUP}, status) (count_over_time(${LEDGER.finished}${sel}[${HISTORY_LOOKBACK}]))`),
      api.query(inProgressQuery(sel)),
    ]);
    const groups = new Map<string, GroupStatus>();
    const groupOf = (labels: Record<string, string>) => {
      let group = groups.get(keyOf(labels));
      if (!group) {
        group = {
          job: labels.job ?? '',
          service: labels.service ?? '',
          environment: labels.environment ?? '',
          version: '',
          commit: '',
          status: '',
          finishedAt: null,
          durationSeconds: null,
          inProgress: false,
          startedAt: null,
          deployments: {},
          rollbacks: 0,
        };
        groups.set(keyOf(labels), group);
      }
      return group;
    };
    for (const { labels, value } of versions) {
      const group = groupOf(labels);
      if (group.finishedAt !== null && group.finishedAt >= value) continue;
      Object.assign(group, {
        version: labels.version ?? '',
        commit: labels.commit ?? '',
        status: labels.status ?? '',
        finishedAt: value,
      });
    }
    for (const { labels, value } of counts) groupOf(labels).deployments[labels.status ?? ''] = value;
    for (const { labels } of inProgress) groupOf(labels).inProgress = true;
    return { groups: [...groups.values()], shown: api.base.toString() };
  } finally {
    api.close();
  }
}

/** What a remote-write store allows instead of `deployctl delete`. */
export function deleteRefusal(): { message: string; hint: string } {
  return {
    message:
      'delete is not available with --remote-write: a remote-write store keeps samples until its retention ends, and deployctl never deletes them',
    hint:
      "a retired group drops out of every window once its last deployment is older than the window. To remove it now, use the store's own API: " +
      'Prometheus POST /api/v1/admin/tsdb/delete_series (needs --web.enable-admin-api), VictoriaMetrics /api/v1/admin/tsdb/delete_series, Mimir and Cortex their tenant deletion API',
  };
}
