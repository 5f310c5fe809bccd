/**
 * The PromQL behind the DORA keys, shared by `deployctl dora`, the Grafana dashboards and the
 * recording rules, so that all three show the same numbers.
 *
 * Pushed counters need care: `increase()` misses a series' first value (a group's first
 * deployment arrives as 1, not 0 then 1) and extrapolates. deployctl's counters are exact totals,
 * so the change over a window is the total now minus the total a window ago, where a series that
 * did not exist a window ago counts from 0.
 */

import { FAMILIES } from '../families.js';
import { STATUSES } from '../record.js';

export const GROUP = 'job, service, environment';

/** A label selector; `filters` values are used as given (regexes in dashboards, literals in the CLI). */
export function selector(filters: Record<string, string>, matcher: '=' | '=~' = '=~'): string {
  const parts = Object.entries(filters).map(([name, value]) => `${name}${matcher}${JSON.stringify(value)}`);
  return parts.length ? `{${parts.join(', ')}}` : '';
}

/** Escapes a literal value for a PromQL string matcher used with =~. */
function literalRegex(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The groups a command asks about as a selector of literal values, matched with =~ as the dashboards do. */
export function groupSelector(filter: {
  job: string;
  service?: string | undefined;
  environment?: string | undefined;
}): {
  filters: Record<string, string>;
  sel: string;
} {
  const filters: Record<string, string> = { job: literalRegex(filter.job) };
  if (filter.service !== undefined) filters.service = literalRegex(filter.service);
  if (filter.environment !== undefined) filters.environment = literalRegex(filter.environment);
  return { filters, sel: selector(filters) };
}

/** A selector with more matchers added. */
export function withLabels(sel: string, extra: string): string {
  if (!extra) return sel;
  return sel ? `${sel.slice(0, -1)}, ${extra}}` : `{${extra}}`;
}

/** How much a pushed counter (or histogram bucket, sum or count) grew during `window`, exactly. */
export function windowIncrease(series: string, window: string): string {
  return `clamp_min(${series} - (${series} offset ${window} or ${series} * 0), 0)`;
}

/**
 * Zero is a number: `expr`, and 0 for every group of `groups` (a per-group vector, such as the
 * group's deployments in the window) that `expr` has no sample for. A count with nothing of its
 * kind is 0, not "no data"; a group with nothing in the window stays absent.
 */
export function orZero(expr: string, groups: string): string {
  return `(${expr} or ${groups} * 0)`;
}

/** A count by group and status, with 0 for each status a group of `groups` has none of. */
export function byStatusOrZero(expr: string, groups: string): string {
  const zeros = STATUSES.map((status) => `label_replace(${groups} * 0, "status", "${status}", "", "")`);
  return `(${[expr, ...zeros].join(' or ')})`;
}

/**
 * The Pushgateway series of failed changes, recovery, rework, verifications and incidents (the
 * SPEC's metric table; written by the recorder, read here).
 */
export const DORA_SERIES = {
  /** Counter by `reason` (failure, rollback, verification, incident): each failed change once. */
  failedChanges: 'deployctl_failed_changes_total',
  /** Histogram: per failed change, from when its failure was known to recovery. */
  recovery: 'deployctl_failed_deployment_recovery_seconds',
  /** Counter: deployments made while a failed change was not yet recovered, and rollbacks. */
  rework: 'deployctl_rework_deployments_total',
  /** Counter by `result` (pass, fail, inconclusive). */
  verifications: 'deployctl_verifications_total',
  /** Gauge: incidents open now. */
  openIncidents: 'deployctl_open_incidents',
  /** Counter: incidents opened. */
  incidents: 'deployctl_incidents_total',
  /** Gauge by `result`: the latest verdict's finish time. */
  lastVerification: 'deployctl_last_verification_timestamp_seconds',
  /** Gauge: the latest incident's change (open or resolve) time. */
  lastIncident: 'deployctl_last_incident_timestamp_seconds',
} as const;

/** The reasons a deployment is a failed change, in the order the SPEC gives them. */
export const FAILURE_REASONS = ['failure', 'rollback', 'verification', 'incident'] as const;

/** A count by group and `label`, with 0 for each of `values` a group of `groups` has none of. */
export function byLabelOrZero(expr: string, groups: string, label: string, values: readonly string[]): string {
  const zeros = values.map((value) => `label_replace(${groups} * 0, "${label}", "${value}", "", "")`);
  return `(${[expr, ...zeros].join(' or ')})`;
}

/**
 * Failed changes by group and reason: `byReason` (a count by group and reason), and for a group
 * that has none of it (recorded before failed changes were counted) its failed deployments and
 * rollbacks as the reasons `failure` and `rollback`; 0 for each reason a group of `groups` has none of.
 */
export function failedChangesByReason(
  byReason: string,
  legacy: { failures: string; rollbacks: string },
  groups: string,
): string {
  const as = (expr: string, reason: string) => `label_replace(${expr}, "reason", "${reason}", "", "")`;
  const fallback = `((${as(legacy.failures, 'failure')} or ${as(legacy.rollbacks, 'rollback')}) unless on (${GROUP}) ${byReason})`;
  return byLabelOrZero(`${byReason} or ${fallback}`, groups, 'reason', FAILURE_REASONS);
}

export interface DoraQueries {
  deploymentsByStatus: string;
  successes: string;
  rollbacks: string;
  deploymentFrequencyPerDay: string;
  /**
   * Failed changes per group in the window, each once whatever its reasons. A group with no
   * failed-change series (recorded before they were counted) counts failed deployments and rollbacks.
   */
  failedChanges: string;
  /** The same by `reason`, 0 for each reason a group has none of. */
  failedChangesByReason: string;
  /** DORA's: failed changes ÷ deployments (success and failure). */
  changeFailureRate: string;
  /** Mean failed deployment recovery time: per failed change, from when its failure was known to recovery. */
  failedDeploymentRecoveryMean: string;
  /** Rework deployments per group in the window (a group recorded before they were counted: its rollbacks). */
  reworkDeployments: string;
  /** DORA's deployment rework rate: rework deployments ÷ deployments (success and failure). */
  deploymentReworkRate: string;
  /** The plain ratio: failed ÷ finished deployments, rollbacks left out. */
  deploymentFailureRate: string;
  leadTimeMean: string;
  leadTimeMedian: string;
  timeToRestoreMean: string;
}

/**
 * The DORA metrics per job/service/environment over `window` (a PromQL duration such as `30d`, or
 * Grafana's `$__range`). `days` is the window in days, for the frequency.
 */
export function doraQueries(sel: string, window: string, days: string): DoraQueries {
  const inc = (metric: string, extra = '') => windowIncrease(`${metric}${withLabels(sel, extra)}`, window);
  const perGroup = (expr: string, by = GROUP) => `sum by (${by}) (${expr})`;
  const mean = (family: string) => `${perGroup(inc(`${family}_sum`))} / (${perGroup(inc(`${family}_count`))} > 0)`;
  // Every group the window sees: a count it has none of is 0 for it.
  const groups = perGroup(inc(FAMILIES.deployments.name));
  const successes = orZero(perGroup(inc(FAMILIES.deployments.name, 'status="success"')), groups);
  const failures = orZero(perGroup(inc(FAMILIES.deployments.name, 'status="failure"')), groups);
  const finished = `(${perGroup(inc(FAMILIES.deployments.name, 'status=~"success|failure"'))} > 0)`;
  // A group recorded before rollbacks were counted has no rollback series: it counts 0.
  const rollbacks = orZero(perGroup(inc(FAMILIES.rollbacks.name)), groups);
  const failedChanges = `(${perGroup(inc(DORA_SERIES.failedChanges))} or (${failures} + ${rollbacks}))`;
  const reworkDeployments = `(${perGroup(inc(DORA_SERIES.rework))} or ${rollbacks})`;
  return {
    deploymentsByStatus: byStatusOrZero(perGroup(inc(FAMILIES.deployments.name), `${GROUP}, status`), groups),
    successes,
    rollbacks,
    deploymentFrequencyPerDay: `${successes} / ${days}`,
    failedChanges,
    failedChangesByReason: failedChangesByReason(
      perGroup(inc(DORA_SERIES.failedChanges), `${GROUP}, reason`),
      { failures, rollbacks },
      groups,
    ),
    // A rate over no finished deployment is nothing to measure: absent, not 0.
    changeFailureRate: `${failedChanges} / ${finished}`,
    failedDeploymentRecoveryMean: mean(DORA_SERIES.recovery),
    reworkDeployments,
    deploymentReworkRate: `${reworkDeployments} / ${finished}`,
    deploymentFailureRate: `${failures} / ${finished}`,
    leadTimeMean: mean(FAMILIES.leadTime.name),
    leadTimeMedian: `histogram_quantile(0.5, ${perGroup(inc(`${FAMILIES.leadTime.name}_bucket`), `${GROUP}, le`)})`,
    timeToRestoreMean: mean(FAMILIES.timeToRestore.name),
  };
}
