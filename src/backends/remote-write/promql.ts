/**
 * The DORA PromQL over the deployment ledger (see ledger.ts), shared by `deployctl dora`, the
 * remote-write dashboards and rules, as src/core/dora/promql.ts is for the Pushgateway's counters.
 * Every deployment is a sample stamped at its finish time, so a window's count is
 * count_over_time and a window's total is sum_over_time: exact, with no extrapolation.
 */

import type { DoraQueries } from '../../core/dora/promql.js';
import { GROUP, selector, withLabels } from '../../core/dora/promql.js';
import { LEDGER } from './ledger.js';

export { selector };

/**
 * The four keys per job/service/environment over `window` (a PromQL duration, or Grafana's
 * `$__range`); `days` is the window in days, for the frequency.
 */
export function ledgerDoraQueries(sel: string, window: string, days: string): DoraQueries {
  const perGroup = (expr: string, by = GROUP) => `sum by (${by}) (${expr})`;
  const count = (extra = '') => `count_over_time(${LEDGER.finished}${withLabels(sel, extra)}[${window}])`;
  const total = (name: string, extra = '') => `sum_over_time(${name}${withLabels(sel, extra)}[${window}])`;
  const successes = perGroup(count('status="success"'));
  const finished = perGroup(count('status=~"success|failure"'));
  return {
    deploymentsByStatus: perGroup(count(), `${GROUP}, status`),
    successes,
    deploymentFrequencyPerDay: `${successes} / ${days}`,
    // A group with successes and no failure has a rate of 0, not none.
    // The ledger does not tell rollbacks apart: none are counted, so both rates are the plain ratio.
    rollbacks: '',
    changeFailureRate: `(${perGroup(count('status="failure"'))} or ${finished} * 0) / (${finished} > 0)`,
    deploymentFailureRate: `(${perGroup(count('status="failure"'))} or ${finished} * 0) / (${finished} > 0)`,
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
