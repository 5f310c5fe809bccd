import { parseWindow } from '../../adapters/prometheus.js';
import { byStatusOrZero, GROUP, groupSelector, selector } from '../../core/dora/promql.js';
import { DeployctlError, ExitCode, UsageError } from '../../core/errors.js';
import type { Log } from '../../core/log.js';
import {
  type BackendReader,
  type Destination,
  DORA_ANSWERS,
  type DoraAnswers,
  type GroupStatus,
  type LabeledValue,
} from '../backend.js';
import { openRemoteWrite, type RemoteWriteClient } from './client.js';
import { remoteWriteChecks } from './doctor.js';
import { HISTORY_LOOKBACK, LEDGER, ledgerFor } from './ledger.js';
import {
  DORA_LEDGER,
  inProgressQuery,
  latestVerificationQuery,
  ledgerDoraQueries,
  openIncidentsQuery,
} from './promql.js';
import { describeSamples } from './protobuf.js';

const DAY = 86_400;

const keyOf = (labels: Record<string, string>) => JSON.stringify([labels.job, labels.service, labels.environment]);

/** The store's query API, or a usage error that says how to give it. */
function queryApi(client: RemoteWriteClient): URL {
  if (!client.queryBase)
    throw new UsageError(
      `no query API is known for --remote-write ${client.displayUrl}`,
      "give the store's Prometheus query API with --prometheus or DEPLOYCTL_PROMETHEUS_URL",
    );
  return client.queryBase;
}

async function query(client: RemoteWriteClient, expr: string): Promise<LabeledValue[]> {
  return (await client.vector(expr)).map((s) => ({ labels: s.metric, value: Number(s.value[1]) }));
}

/**
 * The ledger of a remote-write store, read through its query API with the same credentials,
 * tenant headers and TLS options as the writes.
 */
export function openReader(destination: Destination, log: Log): BackendReader {
  const client = openRemoteWrite(destination, log);
  const refusal = () =>
    new DeployctlError(
      'delete is not available with --remote-write: a remote-write store keeps samples until its retention ends, and deployctl never deletes them',
      ExitCode.failure,
      "a retired group drops out of every window once its last deployment is older than the window. To remove it now, use the store's own API: " +
        'Prometheus POST /api/v1/admin/tsdb/delete_series (needs --web.enable-admin-api), VictoriaMetrics /api/v1/admin/tsdb/delete_series, Mimir and Cortex their tenant deletion API',
    );
  return {
    shownUrl: client.displayUrl,
    /**
     * The latest deployment of each group: the version series with the latest finish time,
     * deployments by status (0 for a status it has none of) and rollbacks over HISTORY_LOOKBACK,
     * and a start not finished, with its time; failed changes over HISTORY_LOOKBACK, incidents whose
     * latest change is an open, and the latest verification (EVENTS_LOOKBACK). The duration of the
     * last deployment is not read (null).
     */
    async status(filter) {
      const base = queryApi(client);
      const filters: Record<string, string> = { job: filter.job };
      if (filter.service !== undefined) filters.service = filter.service;
      if (filter.environment !== undefined) filters.environment = filter.environment;
      const sel = selector(filters, '=');
      const count = (name: string, by = GROUP) =>
        `sum by (${by}) (count_over_time(${name}${sel}[${HISTORY_LOOKBACK}]))`;
      const [versions, counts, rollbacks, inProgress, failedChanges, openIncidents, verifications] = await Promise.all([
        query(client, `max_over_time(${LEDGER.version}${sel}[${HISTORY_LOOKBACK}])`),
        query(client, byStatusOrZero(count(LEDGER.finished, `${GROUP}, status`), count(LEDGER.finished))),
        query(client, count(LEDGER.rollback)),
        query(client, inProgressQuery(sel)),
        query(client, count(DORA_LEDGER.failedChange)),
        query(client, openIncidentsQuery(sel)),
        query(client, latestVerificationQuery(sel)),
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
            failedChanges: 0,
            openIncidents: { count: 0, since: null },
            latestVerification: null,
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
      for (const { labels, value } of rollbacks) groupOf(labels).rollbacks = value;
      for (const { labels, value } of failedChanges) groupOf(labels).failedChanges = value;
      for (const { labels, value } of openIncidents) {
        const { openIncidents: open } = groupOf(labels);
        open.count += 1;
        open.since = open.since === null ? value : Math.min(open.since, value);
      }
      for (const { labels, value } of verifications) {
        const group = groupOf(labels);
        if (group.latestVerification && group.latestVerification.at >= value) continue;
        group.latestVerification = { result: labels.result ?? '', at: value };
      }
      // The query's value is the latest start's own time (the sample's value).
      for (const { labels, value } of inProgress)
        Object.assign(groupOf(labels), { inProgress: true, startedAt: value });
      return { groups: [...groups.values()], shownUrl: base.toString() };
    },
    async dora(filter, window) {
      const base = queryApi(client);
      const q = ledgerDoraQueries(groupSelector(filter).sel, window, String(parseWindow(window) / DAY));
      const answered = await Promise.all(DORA_ANSWERS.map((name) => query(client, q[name])));
      const answers = Object.fromEntries(DORA_ANSWERS.map((name, i) => [name, answered[i]!])) as unknown as DoraAnswers;
      return { answers, shownUrl: base.origin };
    },
    deletePlan() {
      throw refusal();
    },
    async findForDelete() {
      throw refusal();
    },
    doctor: async () => ({ checks: await remoteWriteChecks(client), shownUrl: client.displayUrl }),
    async wouldRecord(grouping, labels, now) {
      const record = {
        kind: 'deployment',
        id: 'doctor',
        status: 'success',
        finishedAt: now,
        version: '',
        commit: '',
        labels,
      } as const;
      return `${describeSamples(ledgerFor(grouping, record, []).series)}\n`;
    },
    close: () => client.close(),
  };
}
