import { stringify } from 'yaml';
import { BANDS } from '../../src/core/dora/bands.js';
import { DORA_SERIES, doraQueries, GROUP, windowIncrease } from '../../src/core/dora/promql.js';

const WINDOWS = [
  ['1d', 1],
  ['7d', 7],
  ['30d', 30],
] as const;

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function recordingRules(): Rule[] {
  return WINDOWS.flatMap(([window, days]) => {
    const q = doraQueries('', window, String(days));
    return [
      { record: `deployctl:deployments:increase${window}`, expr: q.deploymentsByStatus },
      { record: `deployctl:deployment_frequency:per_day_${window}`, expr: q.deploymentFrequencyPerDay },
      { record: `deployctl:rollbacks:increase${window}`, expr: q.rollbacks },
      { record: `deployctl:change_failure_rate:ratio_${window}`, expr: q.changeFailureRate },
      { record: `deployctl:deployment_failure_rate:ratio_${window}`, expr: q.deploymentFailureRate },
      { record: `deployctl:lead_time_seconds:mean_${window}`, expr: q.leadTimeMean },
      { record: `deployctl:time_to_restore_seconds:mean_${window}`, expr: q.timeToRestoreMean },
      { record: `deployctl:failed_changes:increase${window}`, expr: q.failedChanges },
      { record: `deployctl:failed_changes_by_reason:increase${window}`, expr: q.failedChangesByReason },
      { record: `deployctl:failed_deployment_recovery_seconds:mean_${window}`, expr: q.failedDeploymentRecoveryMean },
      { record: `deployctl:rework_deployments:increase${window}`, expr: q.reworkDeployments },
      { record: `deployctl:deployment_rework_rate:ratio_${window}`, expr: q.deploymentReworkRate },
    ];
  });
}

const target = '{{ $labels.service }} in {{ $labels.environment }}';

function alertingRules(): Rule[] {
  return [
    {
      alert: 'DeploymentFailed',
      expr: 'deployctl_deployment_info{status="failure"} == 1',
      labels: { severity: 'warning' },
      annotations: {
        summary: `The last deployment of ${target} failed`,
        description:
          'Version {{ $labels.version }} (commit {{ $labels.commit }}) failed to deploy. The alert clears with the next successful deployment.',
      },
    },
    {
      alert: 'DeploymentStuckInProgress',
      expr: `deployctl_deployment_in_progress == 1 and on (${GROUP}) (time() - deployctl_deployment_started_timestamp_seconds) > 3600`,
      for: '5m',
      labels: { severity: 'warning' },
      annotations: {
        summary: `A deployment of ${target} has been in progress for over an hour`,
        description:
          'deployctl start ran but no deployctl finish followed. Finish it (deployctl finish --status ...) or find the stuck job.',
      },
    },
    {
      alert: 'NoSuccessfulDeployment',
      expr: 'time() - deployctl_last_success_timestamp_seconds > 14 * 86400',
      for: '1h',
      labels: { severity: 'info' },
      annotations: {
        summary: `No successful deployment of ${target} in 14 days`,
        description:
          'Deployment frequency has dropped out of the medium band. A retired service can be removed with deployctl delete.',
      },
    },
    {
      alert: 'ChangeFailureRateHigh',
      expr: `deployctl:change_failure_rate:ratio_7d > ${BANDS.changeFailureRate.thresholds[1]} and on (${GROUP}) sum by (${GROUP}) (deployctl:deployments:increase7d{status=~"success|failure"}) >= 5`,
      for: '15m',
      labels: { severity: 'warning' },
      annotations: {
        summary: `Change failure rate of ${target} is {{ $value | humanizePercentage }} over 7 days`,
        description: `More than ${BANDS.changeFailureRate.thresholds[1] * 100}% of at least 5 deployments in the last 7 days failed or were rolled back.`,
      },
    },
    ...changeAlerts(),
    {
      alert: 'PushgatewayNotScraped',
      expr: 'up{job="pushgateway"} == 0 or absent(up{job="pushgateway"})',
      for: '5m',
      labels: { severity: 'critical' },
      annotations: {
        summary: 'Prometheus is not scraping the Pushgateway',
        description:
          'Deployment metrics are not reaching Prometheus. Check that the gateway runs and that the scrape job is named pushgateway.',
      },
    },
    {
      alert: 'PushgatewayPushFailed',
      expr: 'push_failure_time_seconds > push_time_seconds',
      labels: { severity: 'warning' },
      annotations: {
        summary: `The last push to the group of ${target} (job {{ $labels.job }}) was refused`,
        description:
          'The gateway refused the latest push to this group. deployctl keeps refused records in its outbox: run deployctl flush where it ran, and read its warning.',
      },
    },
  ];
}

/** How long ChangeFailed fires after a deployment becomes a failed change. */
const RECENT_FAILED_CHANGE = '1h';

/** A failed change (named by the group's latest deployment), a failed verification, an incident open for long. */
function changeAlerts(): Rule[] {
  const failed = `(sum by (${GROUP}, reason) (${windowIncrease(DORA_SERIES.failedChanges, RECENT_FAILED_CHANGE)}) > 0)`;
  const named = `${failed} * on (${GROUP}) group_left (version, commit) max by (${GROUP}, version, commit) (deployctl_deployment_info)`;
  const lastVerification = DORA_SERIES.lastVerification;
  return [
    {
      alert: 'ChangeFailed',
      expr: `${named} or on (${GROUP}, reason) ${failed}`,
      labels: { severity: 'warning' },
      annotations: {
        summary: `A deployment of ${target} is a failed change ({{ $labels.reason }})`,
        description: `A deployment became a failed change in the last ${RECENT_FAILED_CHANGE} (reason: {{ $labels.reason }}: failed, rolled back, failed verification or incident). The latest deployment is version {{ $labels.version }} (commit {{ $labels.commit }}); after a rollback, the failed change is the deployment it replaced.`,
      },
    },
    {
      alert: 'VerificationFailed',
      expr: `max by (${GROUP}) (${lastVerification}{result="fail"}) >= on (${GROUP}) max by (${GROUP}) (${lastVerification})`,
      labels: { severity: 'warning' },
      annotations: {
        summary: `The latest verification of ${target} failed`,
        description:
          'deployctl verify found a check out of bounds (or an alert firing) at {{ $value | humanizeTimestamp }}: the deployment it verified is a failed change. The alert clears with the next passing verification.',
      },
    },
    {
      alert: 'IncidentOpenLong',
      expr: `${DORA_SERIES.openIncidents} > 0`,
      for: '1h',
      labels: { severity: 'warning' },
      annotations: {
        summary: `${target} has had an open incident for over an hour`,
        description:
          '{{ $value }} incident(s) recorded with deployctl incident are open. Resolve them (deployctl incident resolve, or Alertmanager resolves them) when production is healthy: recovery time runs until then.',
      },
    },
  ];
}

export function rulesYaml(): string {
  const groups = [
    { name: 'deployctl-dora', rules: recordingRules() },
    { name: 'deployctl-alerts', rules: alertingRules() },
  ];
  return `# Generated by npm run assets from scripts/assets/rules.ts; edit that, not this file.\n${stringify({ groups }, { lineWidth: 0 })}`;
}
