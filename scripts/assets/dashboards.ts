import { type Dashboard, FieldColorModeId, MappingType, type Panel, type VariableModel } from '@grafana/schema';
import { BAND_NAMES, BANDS, bandPromql, type KeyBands } from '../../src/core/dora/bands.js';
import { DORA_SERIES, type DoraQueries, doraQueries, GROUP, windowIncrease } from '../../src/core/dora/promql.js';
import { FAMILIES } from '../../src/core/families.js';

const datasource = { type: 'prometheus', uid: '${datasource}' };
const sel = '{service=~"$service", environment=~"$environment"}';
const withStatus = (status: string) => `{service=~"$service", environment=~"$environment", status=~"${status}"}`;
/** The change during the dashboard's time range, exactly (see src/core/dora/promql.ts). */
const inRange = (series: string) => windowIncrease(series, '$__range');
const ROLLING = '7d';

interface Target {
  expr: string;
  legendFormat?: string;
  instant?: boolean;
  format?: 'table' | 'time_series';
}

function targets(list: Target[]) {
  return list.map((t, i) => ({
    refId: String.fromCharCode(65 + i),
    datasource,
    expr: t.expr,
    legendFormat: t.legendFormat ?? '__auto',
    range: !t.instant,
    instant: t.instant ?? false,
    ...(t.format && { format: t.format }),
  }));
}

let nextId = 1;
function panel(
  type: string,
  title: string,
  grid: { x: number; y: number; w: number; h: number },
  list: Target[],
  extra: Partial<Panel> = {},
): Panel {
  return { id: nextId++, type, title, gridPos: grid, datasource, targets: targets(list), ...extra } as Panel;
}

function stat(
  title: string,
  grid: { x: number; y: number; w: number; h: number },
  list: Target[],
  unit: string,
  extra: Partial<Panel> = {},
): Panel {
  return panel(
    'stat',
    title,
    grid,
    list.map((t) => ({ ...t, instant: true })),
    {
      fieldConfig: { defaults: { unit, ...(extra.fieldConfig?.defaults ?? {}) }, overrides: [] },
      options: {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        colorMode: 'value',
        graphMode: 'none',
        textMode: 'auto',
      },
      ...(extra.description && { description: extra.description }),
    },
  );
}

function variables(): VariableModel[] {
  const query = (name: string, label: string, expr: string): VariableModel =>
    ({
      name,
      label,
      type: 'query',
      datasource,
      query: { query: expr, refId: `${name}-variable` },
      definition: expr,
      refresh: 2,
      multi: true,
      includeAll: true,
      allValue: '.*',
      current: { text: ['All'], value: ['$__all'] },
      sort: 1,
      hide: 0,
    }) as VariableModel;
  return [
    {
      name: 'datasource',
      label: 'Data source',
      type: 'datasource',
      query: 'prometheus',
      current: {},
      hide: 0,
      refresh: 1,
    } as VariableModel,
    query('service', 'Service', 'label_values(deployctl_deployments_total, service)'),
    query('environment', 'Environment', 'label_values(deployctl_deployments_total{service=~"$service"}, environment)'),
  ];
}

function dashboard(
  uid: string,
  title: string,
  description: string,
  panels: Panel[],
  annotations: Dashboard['annotations'],
): Dashboard {
  return {
    uid,
    title,
    description,
    tags: ['deployctl', 'deployments', 'dora'],
    editable: true,
    schemaVersion: 39,
    version: 1,
    time: { from: 'now-30d', to: 'now' },
    refresh: '1m',
    timezone: 'browser',
    graphTooltip: 1,
    templating: { list: variables() },
    annotations,
    panels,
    links: [
      {
        title: 'deployctl',
        type: 'dashboards',
        tags: ['deployctl'],
        asDropdown: false,
        icon: 'external link',
        includeVars: true,
        keepTime: true,
        targetBlank: false,
        tooltip: '',
        url: '',
      },
    ],
  } as Dashboard;
}

const deployMarkers: Dashboard['annotations'] = {
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
      // Each deployment's own finish time, from the gauge's value, not from when it was scraped.
      expr: `deployctl_last_deployment_timestamp_seconds${sel} * 1000 * on (${GROUP}) group_left (version, status) deployctl_deployment_info${sel}`,
      step: '1m',
      titleFormat: '{{service}} {{version}} → {{environment}}',
      textFormat: '{{status}}',
      useValueForTime: true,
    } as NonNullable<Dashboard['annotations']>['list'] extends (infer T)[] | undefined ? T : never,
  ],
};

export function deploymentsDashboard(): Dashboard {
  nextId = 1;
  // Zero is a number: a count over a range with nothing of its kind is 0.
  const count = (status: string) => `sum(${inRange(`deployctl_deployments_total${withStatus(status)}`)}) or vector(0)`;
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
      [{ expr: `sum(${inRange(`${FAMILIES.rollbacks.name}${sel}`)}) or vector(0)` }],
      'none',
      {
        description:
          'Successful deployments of a commit that is an ancestor of the one the service ran (counted among the successful ones too).',
      },
    ),
    stat(
      'In progress',
      { x: 16, y: 0, w: 4, h: 4 },
      [{ expr: `sum(deployctl_deployment_in_progress${sel}) or vector(0)` }],
      'none',
      { description: 'Deployments between deployctl start and finish (or running under deployctl run).' },
    ),
    stat(
      'Since last success',
      { x: 20, y: 0, w: 4, h: 4 },
      [{ expr: `time() - max(deployctl_last_success_timestamp_seconds${sel})` }],
      's',
    ),
    panel(
      'table',
      'Recent deployments',
      { x: 0, y: 4, w: 14, h: 8 },
      [
        {
          expr: `deployctl_last_deployment_timestamp_seconds${sel} * 1000 * on (${GROUP}) group_left (version, commit, status) deployctl_deployment_info${sel}`,
          instant: true,
          format: 'table',
        },
      ],
      {
        description: 'The last deployment of each service and environment, newest first.',
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
      [{ expr: `deployctl_last_success_info${sel}`, instant: true, format: 'table' }],
      {
        description: 'What each environment runs: the last successful deployment.',
        transformations: [
          {
            id: 'organize',
            options: {
              excludeByName: { Time: true, Value: true, __name__: true, instance: true, job: true },
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
          expr: `sum by (status) (${windowIncrease(`deployctl_deployments_total${sel}`, '$__interval')})`,
          legendFormat: '{{status}}',
        },
        {
          expr: `sum(${windowIncrease(`${FAMILIES.rollbacks.name}${sel}`, '$__interval')}) or sum(${windowIncrease(`deployctl_deployments_total${sel}`, '$__interval')}) * 0`,
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
        expr: `histogram_quantile(${q}, sum by (le) (${windowIncrease(`deployctl_deployment_duration_seconds_bucket${sel}`, ROLLING)}))`,
        legendFormat: `p${q * 100}`,
      })),
      { fieldConfig: { defaults: { unit: 's' }, overrides: [] } },
    ),
    panel(
      'bargauge',
      'Mean step duration',
      { x: 0, y: 20, w: 12, h: 8 },
      [
        {
          expr: `sum by (step) (${inRange(`deployctl_step_duration_seconds_sum${sel}`)}) / (sum by (step) (${inRange(`deployctl_step_duration_seconds_count${sel}`)}) > 0)`,
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
      'Last deployment duration',
      { x: 12, y: 20, w: 12, h: 8 },
      [{ expr: `deployctl_last_deployment_duration_seconds${sel}`, legendFormat: '{{service}} {{environment}}' }],
      {
        fieldConfig: { defaults: { unit: 's' }, overrides: [] },
      },
    ),
  ];
  return dashboard(
    'deployctl-deployments',
    'Deployments',
    'Deployments recorded by deployctl: what runs where, how often and how long deploys take.',
    panels,
    deployMarkers,
  );
}

function bandPanel(
  title: string,
  key: KeyBands,
  expr: string,
  grid: { x: number; y: number; w: number; h: number },
): Panel {
  const colors = { 4: 'green', 3: 'blue', 2: 'orange', 1: 'red' } as const;
  return panel(
    'stat',
    title,
    grid,
    [{ expr: bandPromql(key, `(${expr})`), legendFormat: '{{service}} {{environment}}', instant: true }],
    {
      description: `DORA performance band (elite, high, medium, low); thresholds ${key.thresholds.join(', ')} ${key.unit}.`,
      fieldConfig: {
        defaults: {
          mappings: [
            {
              type: MappingType.ValueToText,
              options: Object.fromEntries(
                ([4, 3, 2, 1] as const).map((b) => [
                  String(b),
                  { text: BAND_NAMES[b], color: colors[b], index: 4 - b },
                ]),
              ),
            },
          ],
          color: { mode: FieldColorModeId.Fixed },
        },
        overrides: [],
      },
      options: {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        colorMode: 'background',
        graphMode: 'none',
        textMode: 'value_and_name',
      },
    },
  );
}

/** Per group: the rollbacks in the range, and the plain failure ratio beside the change failure rate. */
function rollbackPanels(range: Pick<DoraQueries, 'rollbacks' | 'deploymentFailureRate'>, y: number): Panel[] {
  const options = {
    reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
    colorMode: 'value',
    graphMode: 'none',
    textMode: 'value_and_name',
  };
  return [
    panel(
      'stat',
      'Rollbacks',
      { x: 12, y, w: 6, h: 8 },
      [{ expr: range.rollbacks, legendFormat: '{{service}} {{environment}}', instant: true }],
      {
        description:
          'Successful deployments of an ancestor of the commit the service ran, in the time range. Each counts as a failed change.',
        fieldConfig: { defaults: { unit: 'none' }, overrides: [] },
        options,
      },
    ),
    panel(
      'stat',
      'Deployment failure ratio',
      { x: 18, y, w: 6, h: 8 },
      [{ expr: range.deploymentFailureRate, legendFormat: '{{service}} {{environment}}', instant: true }],
      {
        description:
          'Failed ÷ finished deployments, rollbacks left out: the plain ratio beside the change failure rate.',
        fieldConfig: { defaults: { unit: 'percentunit', decimals: 2 }, overrides: [] },
        options,
      },
    ),
  ];
}

type Annotation = NonNullable<Dashboard['annotations']>['list'] extends (infer T)[] | undefined ? T : never;

/** Verifications and incidents as annotations: the group's latest of each, at its own time. */
const changeMarkers: Annotation[] = [
  {
    name: 'Verifications',
    datasource,
    enable: true,
    iconColor: 'orange',
    expr: `${DORA_SERIES.lastVerification}${sel} * 1000`,
    step: '1m',
    titleFormat: '{{service}} in {{environment}}: verify {{result}}',
    textFormat: 'the latest deployctl verify of the group',
    useValueForTime: true,
  } as Annotation,
  {
    name: 'Incidents',
    datasource,
    enable: true,
    iconColor: 'red',
    expr: `${DORA_SERIES.lastIncident}${sel} * 1000`,
    step: '1m',
    titleFormat: '{{service}} in {{environment}}: incident',
    textFormat: 'the latest incident opened or resolved',
    useValueForTime: true,
  } as Annotation,
];

interface DoraKey {
  title: string;
  unit: string;
  /** null: DORA gives no band (the rework rate); its row shows failed changes by reason instead. */
  bands: KeyBands | null;
  now: string;
  trend: string;
  hint: string;
}

/** The two newer keys of DORA: failed deployment recovery time and deployment rework rate. */
function recoveryAndRework(
  range: Pick<DoraQueries, 'failedDeploymentRecoveryMean' | 'deploymentReworkRate'>,
  rolling: Pick<DoraQueries, 'failedDeploymentRecoveryMean' | 'deploymentReworkRate'>,
): DoraKey[] {
  return [
    {
      title: 'Failed deployment recovery time',
      unit: 's',
      bands: BANDS.failedDeploymentRecoveryTime,
      now: range.failedDeploymentRecoveryMean,
      trend: rolling.failedDeploymentRecoveryMean,
      hint: 'Mean, per failed change, from when its failure was known (its finish, the failed verification, the incident) to recovery (the incident resolved, or the next successful deployment).',
    },
    {
      title: 'Deployment rework rate',
      unit: 'percentunit',
      bands: null,
      now: range.deploymentReworkRate,
      trend: rolling.deploymentReworkRate,
      hint: 'Rework deployments ÷ deployments: deployments made while a failed change was not yet recovered (fixes, retries, hotfixes), and rollbacks.',
    },
  ];
}

/** Failed changes in the range, by the first reason that made each one. */
function failedChangesPanel(byReason: string, grid: { x: number; y: number; w: number; h: number }): Panel {
  return panel(
    'bargauge',
    'Failed changes by reason',
    grid,
    [{ expr: `sum by (reason) (${byReason})`, legendFormat: '{{reason}}', instant: true }],
    {
      description:
        'Deployments that are failed changes in the time range, each once, by the first reason: failure, rollback, verification, incident.',
      fieldConfig: { defaults: { unit: 'none', min: 0 }, overrides: [] },
      options: {
        orientation: 'horizontal',
        displayMode: 'basic',
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      },
    },
  );
}

/** The earlier "time to restore" (a failing streak to the success that ended it), kept beside its successor. */
function timeToRestorePanels(now: string, trend: string, y: number): Panel[] {
  const hint =
    'Mean time from the first failed deployment of a failing streak to the success that ended it (the definition before failed deployment recovery time).';
  return [
    panel(
      'stat',
      'Time to restore',
      { x: 0, y, w: 6, h: 8 },
      [{ expr: now, legendFormat: '{{service}} {{environment}}', instant: true }],
      {
        description: `${hint} Over the dashboard's time range.`,
        fieldConfig: { defaults: { unit: 's', decimals: 2 }, overrides: [] },
        options: {
          reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
          colorMode: 'value',
          graphMode: 'none',
          textMode: 'value_and_name',
        },
      },
    ),
    panel(
      'timeseries',
      `Time to restore (rolling ${ROLLING})`,
      { x: 6, y, w: 18, h: 8 },
      [{ expr: trend, legendFormat: '{{service}} {{environment}}' }],
      { fieldConfig: { defaults: { unit: 's' }, overrides: [] } },
    ),
  ];
}

export function doraDashboard(): Dashboard {
  nextId = 1;
  const range = doraQueries(sel, '$__range', '($__range_s / 86400)');
  const rolling = doraQueries(sel, ROLLING, '7');
  // A daily rate over less than a day says nothing: no frequency and no band for a shorter range.
  const aDayOrMore = 'and on () (vector($__range_s) >= 86400)';
  const keys: DoraKey[] = [
    {
      title: 'Deployment frequency',
      unit: 'd⁻¹',
      bands: BANDS.deploymentFrequency,
      now: `(${range.deploymentFrequencyPerDay}) ${aDayOrMore}`,
      trend: rolling.deploymentFrequencyPerDay,
      hint: 'Successful deployments per day; empty when the time range is shorter than a day.',
    },
    {
      title: 'Lead time for changes',
      unit: 's',
      bands: BANDS.leadTime,
      now: range.leadTimeMean,
      trend: rolling.leadTimeMean,
      hint: 'Mean time from commit to deployed, over every commit a deployment brought for the first time.',
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
  return dashboard(
    'deployctl-dora',
    'DORA metrics',
    "DORA's five metrics per service and environment, from deployctl: deployment frequency, lead time for changes, change failure rate, failed deployment recovery time and deployment rework rate.",
    panels,
    { list: [...(deployMarkers?.list ?? []), ...changeMarkers] },
  );
}

export {
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
};
