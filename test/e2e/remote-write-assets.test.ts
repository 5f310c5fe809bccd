import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import snappy from 'snappyjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeWriteRequest, sortedLabels, type TimeSeries } from '../../src/backends/remote-write/protobuf.js';
import { deployctl } from '../helpers/cli.js';
import { eventually } from '../helpers/prometheus.js';
import { tempDir } from '../helpers/pushgateway.js';
import { RECEIVERS, type RunningReceiver } from '../helpers/victoria-metrics.js';

const root = new URL('../../', import.meta.url).pathname;
const rulesDir = join(root, 'examples/prometheus/remote-write');
const promtool = (...args: string[]) => execFileSync('promtool', args, { encoding: 'utf8', cwd: rulesDir });

describe('remote-write rules', () => {
  it('are rules that promtool accepts', () => {
    expect(promtool('check', 'rules', 'deployctl-rules.yml')).toContain('SUCCESS: 43 rules found');
  });

  it('fire, and stay quiet, when promtool test rules says they should', () => {
    const files = readdirSync(join(rulesDir, 'tests')).map((f) => `tests/${f}`);
    expect(files.length).toBeGreaterThanOrEqual(1);
    expect(promtool('test', 'rules', ...files).match(/SUCCESS/g)).toHaveLength(files.length);
  });
});

interface Target {
  expr: string;
}

/** Every query of a dashboard: panels, variables and annotations. */
function dashboardQueries(file: string): { title: string; expr: string }[] {
  const dashboard = JSON.parse(readFileSync(join(root, 'grafana-dashboards/remote-write', file), 'utf8'));
  const panels = (dashboard.panels as { title: string; targets: Target[] }[]).flatMap((p) =>
    p.targets.map((t) => ({ title: p.title, expr: t.expr })),
  );
  const variables = (dashboard.templating.list as { type: string; name: string; definition: string }[])
    .filter((v) => v.type === 'query')
    // Grafana reads label values over the dashboard's range; an instant query sees only the last 5 minutes.
    .map((v) => ({
      title: `variable ${v.name}`,
      expr: v.definition.replace(/^label_values\((.*), (\w+)\)$/, 'count by ($2) (count_over_time($1[7d]))'),
    }));
  const annotations = (dashboard.annotations.list as { name: string; expr?: string }[])
    .filter((a) => a.expr)
    .map((a) => ({ title: `annotation ${a.name}`, expr: a.expr! }));
  return [...panels, ...variables, ...annotations];
}

function interpolate(expr: string, service: string): string {
  return expr
    .replaceAll('$__range_s', String(7 * 86_400))
    .replaceAll('$__range', '7d')
    .replaceAll('$__interval', '1d')
    .replaceAll('$service', service)
    .replaceAll('$environment', 'prod');
}

/** One sample per event, stamped at its own time (Unix seconds), written straight to the receiver. */
async function writeEvents(
  writeUrl: string,
  events: { name: string; labels: Record<string, string>; at: number; value?: number }[],
): Promise<void> {
  const series: TimeSeries[] = events.map((e) => ({
    labels: sortedLabels({ __name__: e.name, job: 'deployctl', environment: 'prod', ...e.labels }),
    samples: [{ value: e.value ?? e.at, timestampMs: e.at * 1000 }],
  }));
  const response = await fetch(writeUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy' },
    body: snappy.compress(Buffer.from(encodeWriteRequest(series))),
  });
  expect(response.status, await response.text()).toBeLessThan(300);
}

/**
 * The series of failed changes, recovery, rework, verifications and incidents, as deployctl writes
 * them, for `service`: deployments at now - 3000 (failure), - 2500, - 2000, - 1000 (successes);
 * failed changes: the failure, and the - 2500 deployment (an incident); recovered in 500 s and 900 s;
 * - 2000 and - 1000 are rework; verifications pass (- 1900) then fail (- 900); incident i1 opened at
 * - 2400 and resolved at - 1500, i2 opened at - 800 and open.
 */
function eventHistory(service: string, now: number, withDeployments: boolean) {
  const g = { service };
  const finished = 'deployctl_deployment_finished_timestamp_seconds';
  return [
    ...(withDeployments
      ? [
          { name: finished, labels: { ...g, status: 'failure' }, at: now - 3_000 },
          { name: finished, labels: { ...g, status: 'success' }, at: now - 2_500 },
          { name: finished, labels: { ...g, status: 'success' }, at: now - 2_000 },
          { name: finished, labels: { ...g, status: 'success' }, at: now - 1_000 },
        ]
      : []),
    {
      name: 'deployctl_deployment_failed_change_timestamp_seconds',
      labels: { ...g, reason: 'failure' },
      at: now - 3_000,
    },
    {
      name: 'deployctl_deployment_failed_change_timestamp_seconds',
      labels: { ...g, reason: 'incident' },
      at: now - 2_500,
    },
    { name: 'deployctl_deployment_failed_recovery_seconds', labels: g, at: now - 2_500, value: 500 },
    { name: 'deployctl_deployment_failed_recovery_seconds', labels: g, at: now - 1_500, value: 900 },
    { name: 'deployctl_deployment_rework_timestamp_seconds', labels: g, at: now - 2_000 },
    { name: 'deployctl_deployment_rework_timestamp_seconds', labels: g, at: now - 1_000 },
    { name: 'deployctl_verification_finished_timestamp_seconds', labels: { ...g, result: 'pass' }, at: now - 1_900 },
    { name: 'deployctl_verification_finished_timestamp_seconds', labels: { ...g, result: 'fail' }, at: now - 900 },
    { name: 'deployctl_incident_timestamp_seconds', labels: { ...g, incident: 'i1', action: 'open' }, at: now - 2_400 },
    {
      name: 'deployctl_incident_timestamp_seconds',
      labels: { ...g, incident: 'i1', action: 'resolve' },
      at: now - 1_500,
    },
    { name: 'deployctl_incident_timestamp_seconds', labels: { ...g, incident: 'i2', action: 'open' }, at: now - 800 },
  ];
}

describe.each(Object.keys(RECEIVERS) as (keyof typeof RECEIVERS)[])('remote-write dashboards on %s', (name) => {
  const workdir = tempDir();
  const service = `panels-${name}`;
  const events = `events-${name}`;
  let receiver: RunningReceiver;
  let now = 0;

  beforeAll(async () => {
    receiver = await RECEIVERS[name](workdir.path);
    const env = { DEPLOYCTL_REMOTE_WRITE_URL: receiver.writeUrl, DEPLOYCTL_STATE_DIR: join(workdir.path, 'state') };
    now = Math.floor(Date.now() / 1000);
    const g = ['-s', service, '-e', 'prod'];
    const steps = [
      [
        'record',
        ...g,
        '--status',
        'success',
        '--commit',
        'a1',
        '--commit-time',
        String(now - 7_200),
        '--finished-at',
        String(now - 3_600),
        '--duration',
        '60',
      ],
      [
        'record',
        ...g,
        '--status',
        'failure',
        '--commit',
        'a2',
        '--finished-at',
        String(now - 3_000),
        '--duration',
        '30',
      ],
      [
        'record',
        ...g,
        '--status',
        'success',
        '--commit',
        'a3',
        '--commit-time',
        String(now - 2_900),
        '--finished-at',
        String(now - 2_000),
        '--duration',
        '90',
      ],
      [
        'record',
        ...g,
        '--status',
        'cancelled',
        '--commit',
        'a4',
        '--finished-at',
        String(now - 1_000),
        '--duration',
        '5',
      ],
      ['step', 'build', ...g, '--', 'true'],
      ['start', ...g],
    ];
    for (const args of steps) {
      const result = await deployctl(args, { env });
      expect(result.exitCode, result.stderr).toBe(0);
    }
    // The series the write path adds, for the panels that read them; and a group of them alone, for exact numbers.
    await writeEvents(receiver.writeUrl, eventHistory(service, now, false));
    await writeEvents(receiver.writeUrl, eventHistory(events, now, true));
    await eventually(
      () => receiver.query(`count(count_over_time(deployctl_incident_timestamp_seconds{service="${events}"}[1d]))`),
      (r) => Number(r[0]?.value[1]) === 2,
    );
    // VictoriaMetrics shows new series after a few seconds.
    const sel = `{service="${service}"}`;
    await eventually(
      () =>
        receiver.query(
          `sum(count_over_time(deployctl_deployment_finished_timestamp_seconds${sel}[1d])) + sum(count_over_time(deployctl_deployment_started_timestamp_seconds${sel}[1d])) + sum(count_over_time(deployctl_step_finished_duration_seconds${sel}[1d]))`,
        ),
      (r) => Number(r[0]?.value[1]) === 6,
    );
  }, 60_000);
  afterAll(async () => {
    await receiver?.stop();
    workdir.remove();
  });

  for (const file of ['deployments.json', 'dora.json']) {
    it(`every query of ${file} returns data`, async () => {
      const empty: string[] = [];
      for (const { title, expr } of dashboardQueries(file)) {
        const result = await eventually(
          () => receiver.query(interpolate(expr, service)),
          (r) => r.length > 0,
          10_000,
        );
        if (result.length === 0) empty.push(`${title}: ${interpolate(expr, service)}`);
      }
      expect(empty).toEqual([]);
    }, 120_000);
  }

  it('gives dora, status and the dashboards the five metrics of the events group', async () => {
    const env = { DEPLOYCTL_REMOTE_WRITE_URL: receiver.writeUrl, DEPLOYCTL_STATE_DIR: join(workdir.path, 'state') };
    const dora = await deployctl(['dora', '--window', '1d', '--json', '-s', events], { env });
    expect(dora.exitCode, dora.stderr).toBe(0);
    const row = JSON.parse(dora.stdout).rows[0];
    // 4 deployments; 2 failed changes (a failure, an incident); recovered in (500 + 900) / 2; 2 rework.
    expect(row).toMatchObject({
      deployments: { success: 3, failure: 1, cancelled: 0 },
      failedChanges: 2,
      failedChangesByReason: { failure: 1, rollback: 0, verification: 0, incident: 1 },
      reworkDeployments: 2,
      changeFailureRate: { value: 0.5, band: 'low' },
      failedDeploymentRecoveryTimeSeconds: { value: 700, band: 'elite' },
      deploymentReworkRate: { value: 0.5, band: null },
      deploymentFailureRate: 0.25,
    });
    const status = await deployctl(['status', '--json', '-s', events], { env });
    expect(status.exitCode, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)[0]).toMatchObject({
      failedChanges: 2,
      openIncidents: { count: 1, since: now - 800 },
      latestVerification: { result: 'fail', at: now - 900 },
    });
    const panels = dashboardQueries('dora.json');
    const value = async (title: string) =>
      Number((await receiver.query(interpolate(panels.find((p) => p.title === title)!.expr, events)))[0]!.value[1]);
    expect(await value('Change failure rate')).toBe(0.5);
    expect(await value('Failed deployment recovery time')).toBe(700);
    expect(await value('Deployment rework rate')).toBe(0.5);
    const incidents = await receiver.query(
      interpolate(panels.find((p) => p.title === 'annotation Incidents')!.expr, events),
    );
    expect(incidents.map((r) => `${r.metric.incident} ${r.metric.action} ${Number(r.value[1]) / 1000}`).sort()).toEqual(
      [`i1 open ${now - 2_400}`, `i1 resolve ${now - 1_500}`, `i2 open ${now - 800}`].sort(),
    );
  });

  it('shows the group in progress after deployctl start', async () => {
    const dashboard = dashboardQueries('deployments.json').find((q) => q.title === 'In progress')!;
    expect(Number((await receiver.query(interpolate(dashboard.expr, service)))[0]!.value[1])).toBe(1);
  });
});
