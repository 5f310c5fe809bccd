/**
 * The DORA PromQL over the deployment ledger (see ledger.ts), shared by `deployctl dora`, the
 * remote-write dashboards and rules, as src/core/dora/promql.ts is for the Pushgateway's counters.
 * Every deployment is a sample stamped at its finish time, so a window's count is
 * count_over_time and a window's total is sum_over_time: exact, with no extrapolation.
 */

import type { DoraQueries } from '../../core/dora/promql.js';
import { byStatusOrZero, GROUP, orZero, selector, withLabels } from '../../core/dora/promql.js';
import { LEDGER } from './ledger.js';

export { selector };

/**
 * The four keys per job/service/environment over `window` (a PromQL duration, or Grafana's
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
  return {
    deploymentsByStatus: byStatusOrZero(perGroup(count(), `${GROUP}, status`), groups),
    successes,
    deploymentFrequencyPerDay: `${successes} / ${days}`,
    rollbacks,
    // As on the Pushgateway: failed deployments and rollbacks ÷ finished deployments; none finished is nothing to measure.
    changeFailureRate: `(${failures} + ${rollbacks}) / ${finished}`,
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
