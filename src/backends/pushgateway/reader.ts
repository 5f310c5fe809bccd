import { redactUrl, trustOnly } from '../../adapters/http-endpoint.js';
import { Prometheus, parseWindow } from '../../adapters/prometheus.js';
import { DORA_SERIES, doraQueries, groupSelector, selector } from '../../core/dora/promql.js';
import { DeployctlError, UsageError } from '../../core/errors.js';
import { FAMILIES } from '../../core/families.js';
import type { Log } from '../../core/log.js';
import type { Grouping } from '../../core/record.js';
import {
  type BackendReader,
  type Destination,
  DORA_ANSWERS,
  type DoraAnswers,
  type GroupStatus,
  type LabeledValue,
} from '../backend.js';
import { applyRecord } from './apply.js';
import { type Gateway, groupPath, openGateway } from './client.js';
import { gatewayChecks } from './doctor.js';
import { renderExposition } from './exposition.js';
import { type GroupState, gaugeValue, type ScalarFamily } from './model.js';

/** The series of a scalar family by its name, or none. */
function seriesOf(state: GroupState, name: string): ScalarFamily['series'] {
  return (state.get(name) as ScalarFamily | undefined)?.series ?? [];
}

/** Failed changes, open incidents and the latest verification, from the group's own series. */
function changeHealth(state: GroupState): Pick<GroupStatus, 'failedChanges' | 'openIncidents' | 'latestVerification'> {
  const failedChanges = seriesOf(state, DORA_SERIES.failedChanges).reduce((sum, s) => sum + s.value, 0);
  const open = seriesOf(state, DORA_SERIES.openIncidents)[0]?.value ?? 0;
  const lastIncident = seriesOf(state, DORA_SERIES.lastIncident)[0]?.value;
  let latestVerification: GroupStatus['latestVerification'] = null;
  for (const s of seriesOf(state, DORA_SERIES.lastVerification)) {
    if (!(s.value > 0) || (latestVerification && latestVerification.at >= s.value)) continue;
    latestVerification = { result: s.labels.result ?? '', at: s.value };
  }
  return {
    failedChanges,
    openIncidents: { count: open, since: open > 0 && lastIncident ? lastIncident : null },
    latestVerification,
  };
}

const DAY = 86_400;

/** The latest deployment of one group, from what the gateway holds. */
export function groupStatus(labels: Record<string, string>, state: GroupState): GroupStatus {
  const info = (state.get(FAMILIES.info.name) as ScalarFamily | undefined)?.series[0]?.labels ?? {};
  const deployments: Record<string, number> = {};
  for (const series of (state.get(FAMILIES.deployments.name) as ScalarFamily | undefined)?.series ?? []) {
    const status = series.labels.status ?? '';
    deployments[status] = (deployments[status] ?? 0) + series.value;
  }
  const finishedAt = gaugeValue(state, FAMILIES.lastDeployment);
  const duration = gaugeValue(state, FAMILIES.lastDuration);
  const inProgress = gaugeValue(state, FAMILIES.inProgress) === 1;
  const startedAt = gaugeValue(state, FAMILIES.startedAt);
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
    rollbacks: gaugeValue(state, FAMILIES.rollbacks) ?? 0,
    ...changeHealth(state),
  };
}

/**
 * Groups Prometheus holds under `exported_job` are scraped without `honor_labels: true`, and the
 * DORA queries (by `job`) leave them out. No deployment matched: say so and how to fix it, instead
 * of "no deployments"; some did: name the groups left out, never drop them silently.
 */
async function explainUnhonored(
  prometheus: Prometheus,
  filters: Record<string, string>,
  log: Log,
  shown: LabeledValue[],
): Promise<void> {
  const noData = shown.length === 0;
  const { job, ...rest } = filters;
  const exported = await prometheus.query(
    `count by (exported_job, job, service, environment) (${FAMILIES.deployments.name}${selector({ ...rest, exported_job: job ?? '.*' })})`,
  );
  const scrapeJob = exported[0]?.labels.job;
  if (scrapeJob !== undefined && !noData) {
    // A group also scraped with honor_labels (another scrape job) is shown: not left out.
    const key = (job: string | undefined, l: Record<string, string>) => JSON.stringify([job, l.service, l.environment]);
    const shownGroups = new Set(shown.map(({ labels }) => key(labels.job, labels)));
    const leftOut = exported.filter(({ labels }) => !shownGroups.has(key(labels.exported_job, labels)));
    if (leftOut.length === 0) return;
    const groups = [
      ...new Set(leftOut.map(({ labels }) => `${labels.service ?? ''}/${labels.environment ?? ''}`)),
    ].sort();
    const jobs = [...new Set(leftOut.map(({ labels }) => JSON.stringify(labels.job ?? '')))].join(', ');
    log.warn(
      `left out ${groups.length} group${groups.length === 1 ? '' : 's'} that Prometheus scrapes without honor_labels (job renamed to exported_job, scrape job ${jobs}): ${groups.join(', ')}; add honor_labels: true to that scrape job`,
    );
    return;
  }
  if (scrapeJob !== undefined) {
    throw new DeployctlError(
      `Prometheus holds deployctl's series with the job label renamed to exported_job (scrape job ${JSON.stringify(scrapeJob)}): it scrapes the Pushgateway without honor_labels`,
      1,
      `add honor_labels: true to the scrape job ${JSON.stringify(scrapeJob)} (see examples/prometheus/prometheus.yml); series scraped before the change keep exported_job`,
    );
  }
}

/** The Prometheus that scrapes the gateway: `dora` reads the DORA keys there. */
function scrapingPrometheus(destination: Destination): Prometheus {
  if (!destination.prometheus)
    throw new UsageError(
      '--prometheus is required (or DEPLOYCTL_PROMETHEUS_URL)',
      'the Prometheus that scrapes your Pushgateway, e.g. http://localhost:9090',
    );
  return new Prometheus(
    destination.prometheus,
    destination.timeoutSeconds * 1000,
    undefined,
    {},
    trustOnly(destination.tls),
  );
}

/** The groups of the gateway and the Prometheus scraping it, as the reading commands ask. */
export function openReader(destination: Destination, log: Log): BackendReader {
  const gateway: Gateway = openGateway(destination, log);
  const shownUrl = gateway.displayUrl('');
  return {
    shownUrl,
    async status(filter) {
      const groups = (await gateway.readAllGroups())
        .filter(
          ({ labels, state }) =>
            labels.job === filter.job &&
            (state.has(FAMILIES.deployments.name) ||
              state.has(FAMILIES.inProgress.name) ||
              state.has(DORA_SERIES.openIncidents)),
        )
        .filter(({ labels }) => filter.service === undefined || labels.service === filter.service)
        .filter(({ labels }) => filter.environment === undefined || labels.environment === filter.environment)
        .map(({ labels, state }) => groupStatus(labels, state));
      return { groups, shownUrl };
    },
    async dora(filter, window) {
      const prometheus = scrapingPrometheus(destination);
      const { filters, sel } = groupSelector(filter);
      const q = doraQueries(sel, window, String(parseWindow(window) / DAY));
      const answered = await Promise.all(DORA_ANSWERS.map((name) => prometheus.query(q[name])));
      const answers = Object.fromEntries(DORA_ANSWERS.map((name, i) => [name, answered[i]!])) as unknown as DoraAnswers;
      await explainUnhonored(prometheus, filters, log, answers.deploymentsByStatus);
      return { answers, shownUrl: prometheus.base.origin };
    },
    deletePlan: (grouping) => `DELETE ${gateway.displayUrl(groupPath(grouping))}`,
    async findForDelete(grouping: Grouping) {
      const groups = await gateway.readAllGroups();
      const exists = groups.some(
        ({ labels }) =>
          labels.job === grouping.job &&
          labels.service === grouping.service &&
          labels.environment === grouping.environment,
      );
      if (!exists) {
        const sameService = groups
          .filter(({ labels }) => labels.job === grouping.job && labels.service === grouping.service)
          .map(({ labels }) => labels.environment);
        throw new DeployctlError(
          `there is no group of ${grouping.service} in ${grouping.environment} (job ${grouping.job}) on ${shownUrl}: nothing deleted`,
          1,
          sameService.length
            ? `${grouping.service} has groups in: ${sameService.map((e) => JSON.stringify(e)).join(', ')}`
            : 'deployctl status lists the groups the gateway holds',
        );
      }
      return {
        what: `the group of ${grouping.service} in ${grouping.environment} (job ${grouping.job}) on ${shownUrl}`,
        remove: () => gateway.deleteGroup(grouping),
      };
    },
    doctor: async (job) => ({
      checks: await gatewayChecks(gateway, destination, job),
      shownUrl: redactUrl(destination.url),
    }),
    async wouldRecord(_grouping, labels, now) {
      const applied = applyRecord(
        new Map(),
        { kind: 'deployment', id: 'doctor', status: 'success', finishedAt: now, version: '', commit: '', labels },
        now,
      );
      return renderExposition(applied.families.filter((f) => f.name !== FAMILIES.appliedRecords.name));
    },
    close: () => gateway.close(),
  };
}
