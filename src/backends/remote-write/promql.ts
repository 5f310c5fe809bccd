/**
 * The DORA PromQL over the deployment ledger (see ledger.ts), shared by `deployctl dora`, the
 * remote-write dashboards and rules, as src/core/dora/promql.ts is for the Pushgateway's counters.
 * Every deployment is a sample stamped at its finish time, so a window's count is
 * count_over_time and a window's total is sum_over_time: exact, with no extrapolation.
 */

import type { DoraQueries } from '../../core/dora/promql.js';
import { byStatusOrZero, failedChangesByReason, GROUP, orZero, selector, withLabels } from '../../core/dora/promql.js';
import { LEDGER } from './ledger.js';

/**
 * The ledger series of failed changes, recovery, rework, verifications and incidents (written by
 * the recorder, read here), each one sample per event stamped at its own time.
 */
export const DORA_LEDGER = {
  /** One sample per failed change, at the failed deployment's time. Label: reason (the first that made it one). */
  failedChange: 'deployctl_deployment_failed_change_timestamp_seconds',
  /** One sample per recovered failed change, at recovery; the value is the recovery time in seconds. */
  recovery: 'deployctl_deployment_failed_recovery_seconds',
  /** One sample per rework deployment, at its finish. */
  rework: 'deployctl_deployment_rework_timestamp_seconds',
  /** One sample per verification, at its end; the value is that time. Label: result (pass, fail, inconclusive). */
  verification: 'deployctl_verification_finished_timestamp_seconds',
  /** One sample per change of an incident; the value is its time. Labels: incident (its id), action (open, resolve). */
  incident: 'deployctl_incident_timestamp_seconds',
} as const;

export { selector };

/**
 * The DORA metrics per job/service/environment over `window` (a PromQL duration, or Grafana's
 * `$__range`); `days` is the window in days, for the frequency. Rollbacks are LEDGER.rollback's
 * samples, one per rollback; a count a group with deployments in the window has none of is 0.
 */
export function ledgerDoraQueries(sel: string, window: string, days: string): DoraQueries {
  const perGroup = (expr: string, by = GROUP) => `sum by (${by}) (${expr})`;
  const count = (extra = '') => `count_over_time(${LEDGER.finished}${withLabels(sel, extra)}[${window}])`;
  const total = (name: string, extra = '') => `sum_over_time(${name}${withLabels(sel, extra)}[${window}])`;
  // The groups with deployments (any status) in the window: a count they have none of is 0.
  const groups = perGroup(count());
  const successes = orZero(perGroup(count('status="success"')), groups);
  const failures = orZero(perGroup(count('status="failure"')), groups);
  const finished = `(${perGroup(count('status=~"success|failure"'))} > 0)`;
  const rollbacks = orZero(perGroup(`count_over_time(${LEDGER.rollback}${sel}[${window}])`), groups);
  const events = (name: string, by = GROUP) => perGroup(`count_over_time(${name}${sel}[${window}])`, by);
  // A group with no failed-change sample in the window, as one recorded before they were written, counts failed deployments and rollbacks.
  const failedChanges = `(${events(DORA_LEDGER.failedChange)} or (${failures} + ${rollbacks}))`;
  const reworkDeployments = `(${events(DORA_LEDGER.rework)} or ${rollbacks})`;
  return {
    deploymentsByStatus: byStatusOrZero(perGroup(count(), `${GROUP}, status`), groups),
    successes,
    deploymentFrequencyPerDay: `${successes} / ${days}`,
    rollbacks,
    failedChanges,
    failedChangesByReason: failedChangesByReason(
      events(DORA_LEDGER.failedChange, `${GROUP}, reason`),
      { failures, rollbacks },
      groups,
    ),
    // As on the Pushgateway: failed changes ÷ finished deployments; none finished is nothing to measure.
    changeFailureRate: `${failedChanges} / ${finished}`,
    failedDeploymentRecoveryMean: `${perGroup(total(DORA_LEDGER.recovery))} / ${events(DORA_LEDGER.recovery)}`,
    reworkDeployments,
    deploymentReworkRate: `${reworkDeployments} / ${finished}`,
    deploymentFailureRate: `${failures} / ${finished}`,
    leadTimeMean: `${perGroup(total(LEDGER.leadTimeSum))} / (${perGroup(total(LEDGER.leadTimeCount))} > 0)`,
    leadTimeMedian: `histogram_quantile(0.5, ${perGroup(total(LEDGER.leadTimeBucket), `${GROUP}, le`)})`,
    timeToRestoreMean: `${perGroup(total(LEDGER.timeToRestore))} / ${perGroup(`count_over_time(${LEDGER.timeToRestore}${sel}[${window}])`)}`,
  };
}

/** Mean duration of finished deployments per group and status over `window`. */
export function meanDurationQuery(sel: string, window: string): string {
  const by = `${GROUP}, status`;
  return `sum by (${by}) (sum_over_time(${LEDGER.duration}${sel}[${window}])) / sum by (${by}) (count_over_time(${LEDGER.duration}${sel}[${window}]))`;
}

/** How far back "in progress" looks: a start older than this with no finish is not shown. */
export const IN_PROGRESS_LOOKBACK = '1d';

/** Groups whose latest start is later than their latest finish (value: the start time). */
export function inProgressQuery(sel: string): string {
  const latest = (name: string) => `max by (${GROUP}) (max_over_time(${name}${sel}[${IN_PROGRESS_LOOKBACK}]))`;
  return `${latest(LEDGER.started)} > on (${GROUP}) (${latest(LEDGER.finished)} or ${latest(LEDGER.started)} * 0)`;
}

/** How far back `status` looks for incidents and verifications. */
const EVENTS_LOOKBACK = '365d';

/**
 * Incidents whose latest change is an open, per group and incident id (value: when it opened).
 * An incident opened again after a resolve counts from its latest open.
 */
export function openIncidentsQuery(sel: string): string {
  const latest = (action: string) =>
    `max by (${GROUP}, incident) (max_over_time(${DORA_LEDGER.incident}${withLabels(sel, `action="${action}"`)}[${EVENTS_LOOKBACK}]))`;
  return `${latest('open')} > on (${GROUP}, incident) (${latest('resolve')} or ${latest('open')} * 0)`;
}

/** The latest verification of each group and result (value: when it ended). */
export function latestVerificationQuery(sel: string): string {
  return `max by (${GROUP}, result) (max_over_time(${DORA_LEDGER.verification}${sel}[${EVENTS_LOOKBACK}]))`;
}
