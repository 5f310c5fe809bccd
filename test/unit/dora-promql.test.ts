import { describe, expect, it } from 'vitest';
import {
  DORA_LEDGER,
  latestVerificationQuery,
  ledgerDoraQueries,
  openIncidentsQuery,
} from '../../src/backends/remote-write/promql.js';
import { BANDS, band, bandPromql } from '../../src/core/dora/bands.js';
import { byLabelOrZero, DORA_SERIES, doraQueries, FAILURE_REASONS } from '../../src/core/dora/promql.js';

describe('the PromQL of the five DORA metrics', () => {
  const gateway = doraQueries('{job=~"deployctl"}', '7d', '7');
  const ledger = ledgerDoraQueries('{job=~"deployctl"}', '7d', '7');

  it('counts failed changes from their own series, and failed deployments and rollbacks for a group without it', () => {
    expect(gateway.failedChanges).toMatch(
      new RegExp(
        `^\\(sum by \\(job, service, environment\\) \\(clamp_min\\(${DORA_SERIES.failedChanges}\\{job=~"deployctl"\\} - .* or \\(\\(`,
      ),
    );
    expect(ledger.failedChanges).toContain(`count_over_time(${DORA_LEDGER.failedChange}{job=~"deployctl"}[7d])`);
    for (const q of [gateway, ledger]) {
      expect(q.changeFailureRate.startsWith(`${q.failedChanges} / (`)).toBe(true);
      expect(q.deploymentReworkRate.startsWith(`${q.reworkDeployments} / (`)).toBe(true);
      // Failed deployments + rollbacks is the fallback only: a group with failed changes uses them alone.
      expect(q.failedChangesByReason).toContain('unless on (job, service, environment)');
      for (const reason of FAILURE_REASONS) expect(q.failedChangesByReason).toContain(`"reason", "${reason}"`);
    }
  });

  it('means the recovery time over failed changes recovered in the window', () => {
    expect(gateway.failedDeploymentRecoveryMean).toContain(`${DORA_SERIES.recovery}_sum`);
    expect(gateway.failedDeploymentRecoveryMean).toContain(`${DORA_SERIES.recovery}_count`);
    expect(ledger.failedDeploymentRecoveryMean).toBe(
      `sum by (job, service, environment) (sum_over_time(${DORA_LEDGER.recovery}{job=~"deployctl"}[7d])) / sum by (job, service, environment) (count_over_time(${DORA_LEDGER.recovery}{job=~"deployctl"}[7d]))`,
    );
  });

  it('gives 0 for each value a group has none of', () => {
    expect(byLabelOrZero('x', 'g', 'reason', ['a', 'b'])).toBe(
      '(x or label_replace(g * 0, "reason", "a", "", "") or label_replace(g * 0, "reason", "b", "", ""))',
    );
  });

  it('finds open incidents and the latest verification in the ledger', () => {
    expect(openIncidentsQuery('{service="api"}')).toBe(
      `max by (job, service, environment, incident) (max_over_time(${DORA_LEDGER.incident}{service="api", action="open"}[365d])) > on (job, service, environment, incident) (max by (job, service, environment, incident) (max_over_time(${DORA_LEDGER.incident}{service="api", action="resolve"}[365d])) or max by (job, service, environment, incident) (max_over_time(${DORA_LEDGER.incident}{service="api", action="open"}[365d])) * 0)`,
    );
    expect(latestVerificationQuery('')).toBe(
      `max by (job, service, environment, result) (max_over_time(${DORA_LEDGER.verification}[365d]))`,
    );
  });
});

describe('the band of the failed deployment recovery time', () => {
  it('is elite up to an hour, high up to a day, medium up to a week, low beyond', () => {
    const key = BANDS.failedDeploymentRecoveryTime;
    expect([1_800, 3_600, 3_601, 86_400, 86_401, 604_800, 604_801].map((v) => band(key, v))).toEqual([
      4, 4, 3, 3, 2, 2, 1,
    ]);
    expect(bandPromql(key, 'x')).toBe('(1 + (x <= bool 3600) + (x <= bool 86400) + (x <= bool 604800))');
  });
});
