/**
 * Dashboards and rules for the remote-write backend: the same panels and rules as the
 * Pushgateway's, with queries over the deployment ledger (src/backends/remote-write/).
 */
import type { Dashboard, Panel, VariableModel } from '@grafana/schema';
import { stringify } from 'yaml';
import { LEDGER } from '../../src/backends/remote-write/ledger.js';
import {
  DORA_LEDGER,
  inProgressQuery,
  ledgerDoraQueries,
  openIncidentsQuery,
  IN_PROGRESS_LOOKBACK as RECENT,
} from '../../src/backends/remote-write/promql.js';
import { BANDS } from '../../src/core/dora/bands.js';
import { byStatusOrZero, GROUP } from '../../src/core/dora/promql.js';
import {
  type Annotation,
  bandPanel,
  type DoraKey,
  dashboard,
  failedChangesPanel,
  panel,
  recoveryAndRework,
  rollbackPanels,
  stat,
  timeToRestorePanels,
} from './dashboards.js';

const sel = '{service=~"$service", environment=~"$environment"}';
const withStatus = (status: string) => `{service=~"$service", environment=~"$environment", status=~"${status}"}`;
const ROLLING = '7d';

/** The Pushgateway dashboards' variables, with their values read from the ledger. */
function ledgerVariables(board: Dashboard): Dashboard {
  const list = (board.templating?.list ?? []).map((v: VariableModel) => {
    if (v.name === 'service')
      return {
        ...v,
        query: { query: `label_values(${LEDGER.finished}, service)`, refId: 'service-variable' },
        definition: `label_values(${LEDGER.finished}, service)`,
      };
    if (v.name === 'environment') {
      const expr = `label_values(${LEDGER.finished}{service=~"$service"}, environment)`;
      return { ...v, query: { query: expr, refId: 'environment-variable' }, definition: expr };
    }
    return v;
  });
  return { ...board, templating: { list }, tags: [...(board.tags ?? []), 'remote-write'] } as Dashboard;
}

const deployMarkers = (datasource: unknown): Dashboard['annotations'] => ({
  list: [
    {
      name: 'Annotations & Alerts',
      builtIn: 1,
      datasource: { type: 'grafana', uid: '-- Grafana --' },
      enable: true,
      hide: true,
      iconColor: 'rgba(0, 211, 255, 1)',
      type: 'dashboard',
    },
    {
      name: 'Deployments',
      datasource,
      enable: true,
      iconColor: 'purple',
      // Each deployment's own finish time, from the sample's value.
      expr: `max_over_time(${LEDGER.version}${sel}[$__interval]) * 1000`,
      step: '1m',
      titleFormat: '{{service}} {{version}} → {{environment}}',
      textFormat: '{{status}}',
      useValueForTime: true,
    } as NonNullable<Dashboard['annotations']>['list'] extends (infer T)[] | undefined ? T : never,
  ],
});

const IN_PROGRESS = inProgressQuery(sel);

/** Each verification and each change of an incident as an annotation, at its own time. */
const changeMarkers = (datasource: unknown): Annotation[] => [
  {
    name: 'Verifications',
    datasource,
    enable: true,
    iconColor: 'orange',
    expr: `max_over_time(${DORA_LEDGER.verification}${sel}[$__interval]) * 1000`,
    step: '1m',
    titleFormat: '{{service}} in {{environment}}: verify {{result}}',
    textFormat: 'deployctl verify',
    useValueForTime: true,
  } as Annotation,
  {
    name: 'Incidents',
    datasource,
    enable: true,
    iconColor: 'red',
    expr: `max_over_time(${DORA_LEDGER.incident}${sel}[$__interval]) * 1000`,
    step: '1m',
    titleFormat: '{{service}} in {{environment}}: incident {{incident}} {{action}}',
    textFormat: '{{action}}',
    useValueForTime: true,
  } as Annotation,
];

function remoteWriteDeploymentsDashboard(): Dashboard {
  // Zero is a number: a count over a range with nothing of its kind is 0.
  const count = (status: string) =>
    `sum(count_over_time(${LEDGER.finished}${withStatus(status)}[$__range])) or vector(0)`;
  const panels: Panel[] = [
    stat('Deployments', { x: 0, y: 0, w: 4, h: 4 }, [{ expr: count('success|failure|cancelled') }], 'none', {
      description: 'Deployments finished in the time range, any status.',
    }),
    stat('Successful', { x: 4, y: 0, w: 3, h: 4 }, [{ expr: count('success') }], 'none'),
    stat('Failed', { x: 7, y: 0, w: 3, h: 4 }, [{ expr: count('failure') }], 'none'),
    stat('Cancelled', { x: 10, y: 0, w: 3, h: 4 }, [{ expr: count('cancelled') }], 'none'),
    stat(
      'Rollbacks',
      { x: 13, y: 0, w: 3, h: 4 },
      [{ expr: `sum(count_over_time(${LEDGER.rollback}${sel}[$__range])) or vector(0)` }],
      'none',
      {
        description:
          'Successful deployments of a commit that is an ancestor of the one the service ran (counted among the successful ones too).',
      },
    ),
    stat('In progress', { x: 16, y: 0, w: 4, h: 4 }, [{ expr: `count(${IN_PROGRESS}) or vector(0)` }], 'none', {
      description: `Deployments started with deployctl start in the last ${RECENT} and not finished yet.`,
    }),
    stat(
      'Since last success',
      { x: 20, y: 0, w: 4, h: 4 },
      [{ expr: `time() - max(max_over_time(${LEDGER.finished}${withStatus('success')}[$__range]))` }],
      's',
    ),
    panel(
      'table',
      'Recent deployments',
      { x: 0, y: 4, w: 14, h: 8 },
      [{ expr: `max_over_time(${LEDGER.version}${sel}[$__range]) * 1000`, instant: true, format: 'table' }],
      {
        description:
          'Each version, commit and status deployed in the time range, with its latest finish time, newest first.',
        fieldConfig: {
          defaults: {},
          overrides: [
            {
              matcher: { id: 'byName', options: 'Value' },
              properties: [
                { id: 'unit', value: 'dateTimeAsIso' },
                { id: 'displayName', value: 'Finished' },
              ],
            },
          ],
        },
        options: { sortBy: [{ displayName: 'Finished', desc: true }], showHeader: true },
        transformations: [
          {
            id: 'organize',
            options: {
              excludeByName: { Time: true, __name__: true, instance: true },
              indexByName: { service: 0, environment: 1, version: 2, status: 3, commit: 4, Value: 5 },
            },
          },
        ],
      },
    ),
    panel(
      'table',
      'Current version per environment',
      { x: 14, y: 4, w: 10, h: 8 },
      [
        {
          expr: `max_over_time(${LEDGER.version}${withStatus('success')}[$__range]) == on (${GROUP}) group_left max by (${GROUP}) (max_over_time(${LEDGER.finished}${withStatus('success')}[$__range]))`,
          instant: true,
          format: 'table',
        },
      ],
      {
        description: 'What each environment runs: the last successful deployment in the time range.',
        transformations: [
          {
            id: 'organize',
            options: {
              excludeByName: { Time: true, Value: true, __name__: true, instance: true, job: true, status: true },
              indexByName: { service: 0, environment: 1, version: 2, commit: 3 },
            },
          },
        ],
      },
    ),
    panel(
      'timeseries',
      'Deployments by status',
      { x: 0, y: 12, w: 12, h: 8 },
      [
        {
          expr: byStatusOrZero(
            `sum by (status) (count_over_time(${LEDGER.finished}${sel}[$__interval]))`,
            `sum(count_over_time(${LEDGER.finished}${sel}[$__interval]))`,
          ),
          legendFormat: '{{status}}',
        },
        {
          expr: `sum(count_over_time(${LEDGER.rollback}${sel}[$__interval])) or sum(count_over_time(${LEDGER.finished}${sel}[$__interval])) * 0`,
          legendFormat: 'rollback',
        },
      ],
      {
        interval: '1m',
        description: 'Deployments finished in each interval; rollbacks are successful deployments counted again apart.',
        fieldConfig: {
          defaults: {
            unit: 'none',
            custom: { drawStyle: 'bars', fillOpacity: 80, stacking: { mode: 'normal', group: 'A' } },
          },
          overrides: [],
        },
      },
    ),
    panel(
      'timeseries',
      `Deployment duration (rolling ${ROLLING})`,
      { x: 12, y: 12, w: 12, h: 8 },
      [0.5, 0.9, 0.99].map((q) => ({
        expr: `max by (status) (quantile_over_time(${q}, ${LEDGER.duration}${sel}[${ROLLING}]))`,
        legendFormat: `p${q * 100} {{status}}`,
      })),
      {
        description: 'Quantiles of the deployments of each service and environment, the highest of them by status.',
        fieldConfig: { defaults: { unit: 's' }, overrides: [] },
      },
    ),
    panel(
      'bargauge',
      'Mean step duration',
      { x: 0, y: 20, w: 12, h: 8 },
      [
        {
          expr: `sum by (step) (sum_over_time(${LEDGER.step}${sel}[$__range])) / sum by (step) (count_over_time(${LEDGER.step}${sel}[$__range]))`,
          legendFormat: '{{step}}',
          instant: true,
        },
      ],
      {
        fieldConfig: { defaults: { unit: 's' }, overrides: [] },
        options: {
          orientation: 'horizontal',
          displayMode: 'gradient',
          reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        },
      },
    ),
    panel(
      'timeseries',
      'Deployment duration',
      { x: 12, y: 20, w: 12, h: 8 },
      [
        {
          expr: `max by (${GROUP}) (max_over_time(${LEDGER.duration}${sel}[$__interval]))`,
          legendFormat: '{{service}} {{environment}}',
        },
      ],
      {
        interval: '1m',
        description: 'How long each deployment took, at its finish time.',
        fieldConfig: { defaults: { unit: 's', custom: { drawStyle: 'points', pointSize: 6 } }, overrides: [] },
      },
    ),
  ];
  const board = dashboard(
    'deployctl-rw-deployments',
    'Deployments (remote-write)',
    'Deployments recorded by deployctl with --remote-write: what runs where, how often and how long deploys take.',
    panels,
    undefined,
  );
  return ledgerVariables({ ...board, annotations: deployMarkers(panels[0]!.datasource) });
}

function remoteWriteDoraDashboard(): Dashboard {
  const range = ledgerDoraQueries(sel, '$__range', '($__range_s / 86400)');
  const rolling = ledgerDoraQueries(sel, ROLLING, '7');
  const keys: DoraKey[] = [
    {
      title: 'Deployment frequency',
      unit: 'd⁻¹',
      bands: BANDS.deploymentFrequency,
      now: range.deploymentFrequencyPerDay,
      trend: rolling.deploymentFrequencyPerDay,
      hint: 'Successful deployments per day.',
    },
    {
      title: 'Lead time for changes',
      unit: 's',
      bands: BANDS.leadTime,
      now: range.leadTimeMean,
      trend: rolling.leadTimeMean,
      hint: 'Mean time from commit to deployed, over every newly deployed commit.',
    },
    {
      title: 'Change failure rate',
      unit: 'percentunit',
      bands: BANDS.changeFailureRate,
      now: range.changeFailureRate,
      trend: rolling.changeFailureRate,
      hint: 'Failed changes ÷ deployments (cancelled ones excluded): a deployment that failed, was rolled back, failed a verification or had an incident, counted once.',
    },
    ...recoveryAndRework(range, rolling),
  ];
  const panels: Panel[] = keys.flatMap((key, i) => {
    const y = i * 8;
    return [
      panel(
        'stat',
        key.title,
        { x: 0, y, w: 6, h: 8 },
        [{ expr: key.now, legendFormat: '{{service}} {{environment}}', instant: true }],
        {
          description: `${key.hint} Over the dashboard's time range.`,
          fieldConfig: { defaults: { unit: key.unit, decimals: 2 }, overrides: [] },
          options: {
            reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
            colorMode: 'value',
            graphMode: 'none',
            textMode: 'value_and_name',
          },
        },
      ),
      key.bands
        ? bandPanel(`${key.title}: band`, key.bands, key.now, { x: 6, y, w: 6, h: 8 })
        : failedChangesPanel(range.failedChangesByReason, { x: 6, y, w: 6, h: 8 }),
      panel(
        'timeseries',
        `${key.title} (rolling ${ROLLING})`,
        { x: 12, y, w: 12, h: 8 },
        [{ expr: key.trend, legendFormat: '{{service}} {{environment}}' }],
        {
          description: `${key.hint} Each point covers the ${ROLLING} before it.`,
          fieldConfig: { defaults: { unit: key.unit }, overrides: [] },
        },
      ),
    ];
  });
  panels.push(
    panel(
      'table',
      'Deployments in range by status',
      { x: 0, y: 40, w: 12, h: 8 },
      [{ expr: range.deploymentsByStatus, instant: true, format: 'table' }],
      {
        transformations: [
          { id: 'organize', options: { excludeByName: { Time: true }, renameByName: { Value: 'deployments' } } },
        ],
      },
    ),
    ...rollbackPanels(range, 40),
    ...timeToRestorePanels(range.timeToRestoreMean, rolling.timeToRestoreMean, 48),
  );
  const board = dashboard(
    'deployctl-rw-dora',
    'DORA metrics (remote-write)',
    "DORA's five metrics per service and environment, from deployctl's deployment ledger in a remote-write store.",
    panels,
    undefined,
  );
  const datasource = panels[0]!.datasource;
  const markers = deployMarkers(datasource);
  return ledgerVariables({ ...board, annotations: { list: [...(markers?.list ?? []), ...changeMarkers(datasource)] } });
}

const WINDOWS = [
  ['1d', 1],
  ['7d', 7],
  ['30d', 30],
] as const;

const target = '{{ $labels.service }} in {{ $labels.environment }}';

/** Recording and alerting rules over the ledger; the recorded names are the Pushgateway rules' with `rw` added. */
function remoteWriteRulesYaml(): string {
  const recording = WINDOWS.flatMap(([window, days]) => {
    const q = ledgerDoraQueries('', window, String(days));
    return [
      { record: `deployctl_rw:deployments:count${window}`, expr: q.deploymentsByStatus },
      { record: `deployctl_rw:deployment_frequency:per_day_${window}`, expr: q.deploymentFrequencyPerDay },
      { record: `deployctl_rw:rollbacks:count${window}`, expr: q.rollbacks },
      { record: `deployctl_rw:change_failure_rate:ratio_${window}`, expr: q.changeFailureRate },
      { record: `deployctl_rw:deployment_failure_rate:ratio_${window}`, expr: q.deploymentFailureRate },
      { record: `deployctl_rw:lead_time_seconds:mean_${window}`, expr: q.leadTimeMean },
      { record: `deployctl_rw:time_to_restore_seconds:mean_${window}`, expr: q.timeToRestoreMean },
      { record: `deployctl_rw:failed_changes:count${window}`, expr: q.failedChanges },
      { record: `deployctl_rw:failed_changes_by_reason:count${window}`, expr: q.failedChangesByReason },
      {
        record: `deployctl_rw:failed_deployment_recovery_seconds:mean_${window}`,
        expr: q.failedDeploymentRecoveryMean,
      },
      { record: `deployctl_rw:rework_deployments:count${window}`, expr: q.reworkDeployments },
      { record: `deployctl_rw:deployment_rework_rate:ratio_${window}`, expr: q.deploymentReworkRate },
    ];
  });
  const noSel = (expr: string) => expr.replaceAll(sel, '');
  const lastFinish = `max by (${GROUP}) (max_over_time(${LEDGER.finished}[30d]))`;
  const alerts = [
    {
      alert: 'DeploymentFailed',
      expr: `max by (${GROUP}) (max_over_time(${LEDGER.finished}{status="failure"}[30d])) == on (${GROUP}) ${lastFinish}`,
      labels: { severity: 'warning' },
      annotations: {
        summary: `The last deployment of ${target} failed`,
        description:
          'The latest deployment recorded in the last 30 days failed. The alert clears with the next successful deployment.',
      },
    },
    {
      alert: 'DeploymentStuckInProgress',
      expr: `(${noSel(IN_PROGRESS)}) and on (${GROUP}) (time() - max by (${GROUP}) (max_over_time(${LEDGER.started}[${RECENT}]))) > 3600`,
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
      expr: `time() - max by (${GROUP}) (max_over_time(${LEDGER.finished}{status="success"}[90d])) > 14 * 86400`,
      for: '1h',
      labels: { severity: 'info' },
      annotations: {
        summary: `No successful deployment of ${target} in 14 days`,
        description:
          'Deployment frequency has dropped out of the medium band. Groups with no success in 90 days are not watched.',
      },
    },
    {
      alert: 'ChangeFailureRateHigh',
      expr: `deployctl_rw:change_failure_rate:ratio_7d > ${BANDS.changeFailureRate.thresholds[1]} and on (${GROUP}) sum by (${GROUP}) (deployctl_rw:deployments:count7d{status=~"success|failure"}) >= 5`,
      for: '15m',
      labels: { severity: 'warning' },
      annotations: {
        summary: `Change failure rate of ${target} is {{ $value | humanizePercentage }} over 7 days`,
        description: `More than ${BANDS.changeFailureRate.thresholds[1] * 100}% of at least 5 deployments in the last 7 days failed or were rolled back.`,
      },
    },
  ];
  // A failed change's sample is stamped at the failed deployment's time, which a verification or an
  // incident can follow by up to the attribution window: look back a day.
  const latestFailed = `max by (${GROUP}) (max_over_time(${DORA_LEDGER.failedChange}[1d]))`;
  const named = `max by (${GROUP}, version, commit) (max_over_time(${LEDGER.version}[1d])) == on (${GROUP}) group_left () ${latestFailed}`;
  const verification = (extra: string) => `max by (${GROUP}) (max_over_time(${DORA_LEDGER.verification}${extra}[1d]))`;
  const open = openIncidentsQuery('');
  alerts.push(
    {
      alert: 'ChangeFailed',
      expr: `${named} or on (${GROUP}) ${latestFailed}`,
      labels: { severity: 'warning' },
      annotations: {
        summary: `A deployment of ${target} is a failed change`,
        description:
          'Version {{ $labels.version }} (commit {{ $labels.commit }}), deployed at {{ $value | humanizeTimestamp }}, failed, was rolled back, failed a verification or had an incident in the last day.',
      },
    },
    {
      alert: 'VerificationFailed',
      expr: `${verification('{result="fail"}')} >= on (${GROUP}) ${verification('')}`,
      labels: { severity: 'warning' },
      annotations: {
        summary: `The latest verification of ${target} failed`,
        description:
          'deployctl verify found a check out of bounds (or an alert firing) at {{ $value | humanizeTimestamp }}: the deployment it verified is a failed change. The alert clears with the next passing verification.',
      },
    },
    {
      alert: 'IncidentOpenLong',
      expr: `count by (${GROUP}) (${open}) and on (${GROUP}) (time() - min by (${GROUP}) (${open})) > 3600`,
      labels: { severity: 'warning' },
      annotations: {
        summary: `${target} has had an open incident for over an hour`,
        description:
          '{{ $value }} incident(s) recorded with deployctl incident are open. Resolve them (deployctl incident resolve, or Alertmanager resolves them) when production is healthy: recovery time runs until then.',
      },
    },
  );
  const groups = [
    { name: 'deployctl-rw-dora', rules: recording },
    { name: 'deployctl-rw-alerts', rules: alerts },
  ];
  return `# Generated by npm run assets from scripts/assets/remote-write.ts; edit that, not this file.\n# For deployments recorded with --remote-write (the deployment ledger).\n${stringify({ groups }, { lineWidth: 0 })}`;
}

export function remoteWriteAssets(): { path: string; content: string }[] {
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  return [
    { path: 'grafana-dashboards/remote-write/deployments.json', content: json(remoteWriteDeploymentsDashboard()) },
    { path: 'grafana-dashboards/remote-write/dora.json', content: json(remoteWriteDoraDashboard()) },
    { path: 'examples/prometheus/remote-write/deployctl-rules.yml', content: remoteWriteRulesYaml() },
  ];
}
