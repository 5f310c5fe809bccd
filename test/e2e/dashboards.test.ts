import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, deployctl } from '../helpers/cli.js';
import { TestRepo } from '../helpers/git.js';
import { eventually, type RunningPrometheus, startPrometheus } from '../helpers/prometheus.js';
import { type RunningServer, startPushgateway, tempDir } from '../helpers/pushgateway.js';

const root = new URL('../../', import.meta.url).pathname;
const rules = join(root, 'examples/prometheus/deployctl-rules.yml');
const workdir = tempDir();
let gateway: RunningServer;
let prometheus: RunningPrometheus;
let env: Record<string, string>;

const T0 = 1_767_225_600; // commit times and finish times of the scripted history, fixed
const record = (args: string[], cwd = workdir.path) => deployctl(['record', ...args], { env, cwd });

/**
 * The scripted history, with the values it must produce:
 *  shop/api in prod: success, failure, failure, success (a restore of 2000 s); lead times
 *    3600 (first deploy, c1 alone), then 5000 and 4000 (c2 and c3); two steps.
 *  shop/web in staging: success, success, cancelled; lead times 600 and 900 (--commit-time).
 *  example/api and example/api-schema in staging: examples/deploy.sh.
 * And pay in prod: the series of failed changes, recovery, rework, verifications and incidents,
 *  pushed to the gateway as deployctl writes them (see PAY), for the panels that read them.
 */
async function scriptedHistory(): Promise<void> {
  const repo = new TestRepo(join(workdir.path, 'repo'));
  repo.commit('c1', T0);
  const api = ['-s', 'shop/api', '-e', 'prod'];
  const check = (result: { exitCode: number; stderr: string }) => expect(result.exitCode, result.stderr).toBe(0);
  check(
    await record([...api, '--status', 'success', '--duration', '90', '--finished-at', String(T0 + 3_600)], repo.path),
  );
  repo.commit('c2', T0 + 4_000);
  repo.commit('c3', T0 + 5_000);
  check(
    await record([...api, '--status', 'failure', '--duration', '30', '--finished-at', String(T0 + 7_000)], repo.path),
  );
  check(
    await record([...api, '--status', 'failure', '--duration', '40', '--finished-at', String(T0 + 8_000)], repo.path),
  );
  check(await deployctl(['step', 'build', ...api, '--', 'sleep', '0.2'], { env, cwd: repo.path }));
  check(await deployctl(['step', 'migrate', ...api, '--', 'true'], { env, cwd: repo.path }));
  check(
    await record(
      [...api, '--status', 'success', '--duration', '120', '--finished-at', String(T0 + 9_000), '--version', '2.0.0'],
      repo.path,
    ),
  );

  const web = ['-s', 'shop/web', '-e', 'staging'];
  check(
    await record([
      ...web,
      '--status',
      'success',
      '--commit',
      'w1',
      '--commit-time',
      String(T0),
      '--finished-at',
      String(T0 + 600),
      '--duration',
      '10',
    ]),
  );
  check(
    await record([
      ...web,
      '--status',
      'success',
      '--commit',
      'w2',
      '--commit-time',
      String(T0 + 1_000),
      '--finished-at',
      String(T0 + 1_900),
      '--duration',
      '20',
    ]),
  );
  check(
    await record([
      ...web,
      '--status',
      'cancelled',
      '--commit',
      'w3',
      '--finished-at',
      String(T0 + 2_000),
      '--duration',
      '5',
    ]),
  );

  const example = await execa('sh', [join(root, 'examples/deploy.sh')], {
    env: {
      ...env,
      PATH: process.env.PATH ?? '',
      HOME: workdir.path,
      DEPLOYCTL: `${process.execPath} ${BIN}`,
      VERSION: '9.9.9',
    },
    extendEnv: false,
    cwd: workdir.path,
    reject: false,
  });
  expect(example.exitCode, String(example.stderr)).toBe(0);
  expect(String(example.stdout)).toContain('rolling out');
}

/**
 * The group pay in prod, pushed straight to the gateway: 3 successes and 1 failure; 3 failed
 * changes (a failure, a failed verification, an incident), recovered in 5400 s in all; 2 rework
 * deployments; verifications 2 pass and 1 fail (the latest, at T0 + 8000); 2 incidents, one open
 * (the latest change at T0 + 8500).
 */
const PAY = {
  deployments: { success: 3, failure: 1, cancelled: 0 },
  failedChanges: { failure: 1, rollback: 0, verification: 1, incident: 1 },
  recoverySum: 5_400,
  recoveryCount: 3,
  rework: 2,
  lastVerification: T0 + 8_000,
  lastIncident: T0 + 8_500,
};
const PAY_FAILED = Object.values(PAY.failedChanges).reduce((a, b) => a + b, 0);
const PAY_FINISHED = PAY.deployments.success + PAY.deployments.failure;

async function pushPay(): Promise<void> {
  const lines = [
    '# TYPE deployctl_deployments_total counter',
    ...Object.entries(PAY.deployments).map(([s, n]) => `deployctl_deployments_total{status="${s}"} ${n}`),
    '# TYPE deployctl_rollbacks_total counter',
    'deployctl_rollbacks_total 0',
    '# TYPE deployctl_failed_changes_total counter',
    ...Object.entries(PAY.failedChanges).map(([r, n]) => `deployctl_failed_changes_total{reason="${r}"} ${n}`),
    '# TYPE deployctl_failed_deployment_recovery_seconds histogram',
    `deployctl_failed_deployment_recovery_seconds_bucket{le="+Inf"} ${PAY.recoveryCount}`,
    `deployctl_failed_deployment_recovery_seconds_sum ${PAY.recoverySum}`,
    `deployctl_failed_deployment_recovery_seconds_count ${PAY.recoveryCount}`,
    '# TYPE deployctl_rework_deployments_total counter',
    `deployctl_rework_deployments_total ${PAY.rework}`,
    '# TYPE deployctl_verifications_total counter',
    'deployctl_verifications_total{result="pass"} 2',
    'deployctl_verifications_total{result="fail"} 1',
    'deployctl_verifications_total{result="inconclusive"} 0',
    '# TYPE deployctl_last_verification_timestamp_seconds gauge',
    `deployctl_last_verification_timestamp_seconds{result="fail"} ${PAY.lastVerification}`,
    '# TYPE deployctl_open_incidents gauge',
    'deployctl_open_incidents 1',
    '# TYPE deployctl_incidents_total counter',
    'deployctl_incidents_total 2',
    '# TYPE deployctl_last_incident_timestamp_seconds gauge',
    `deployctl_last_incident_timestamp_seconds ${PAY.lastIncident}`,
  ];
  const response = await fetch(`${gateway.url}/metrics/job/deployctl/service/pay/environment/prod`, {
    method: 'PUT',
    body: `${lines.join('\n')}\n`,
  });
  expect(response.status, await response.text()).toBe(200);
}

/** Panels that read the series pushed for pay only (until the scripted history verifies and has incidents). */
const PAY_SERIES = /deployctl_(failed_deployment_recovery_seconds|last_verification|last_incident)/;

beforeAll(async () => {
  gateway = await startPushgateway();
  env = { DEPLOYCTL_PUSHGATEWAY_URL: gateway.url, DEPLOYCTL_STATE_DIR: join(workdir.path, 'state') };
  prometheus = await startPrometheus(workdir.path, gateway.url, [rules]);
  await scriptedHistory();
  await pushPay();
  // Wait for a scrape of the final state and for the recording rules to see it.
  await eventually(
    () => prometheus.query('sum(deployctl_deployments_total)'),
    (r) => r[0]?.value[1] === String(9 + PAY_FINISHED),
    30_000,
  );
  await eventually(
    () => prometheus.query('deployctl:time_to_restore_seconds:mean_1d'),
    (r) => r.length === 1,
    30_000,
  );
  await eventually(
    () => prometheus.query('deployctl:failed_deployment_recovery_seconds:mean_1d'),
    (r) => r.length === 1,
    30_000,
  );
}, 90_000);

afterAll(async () => {
  await prometheus?.stop();
  await gateway?.stop();
  workdir.remove();
});

interface DashboardTarget {
  panel: string;
  expr: string;
}

function dashboardTargets(file: string): { targets: DashboardTarget[]; variables: string[] } {
  const dashboard = JSON.parse(readFileSync(join(root, 'grafana-dashboards', file), 'utf8'));
  const targets: DashboardTarget[] = [];
  for (const panel of dashboard.panels)
    for (const t of panel.targets ?? []) targets.push({ panel: panel.title, expr: t.expr });
  for (const a of dashboard.annotations.list) if (a.expr) targets.push({ panel: `annotation ${a.name}`, expr: a.expr });
  const variables = dashboard.templating.list
    .filter((v: { type: string }) => v.type === 'query')
    .map((v: { definition: string }) => v.definition);
  return { targets, variables };
}

/** Grafana's variable interpolation for one choice of service and environment over a range (a day unless told). */
function interpolate(expr: string, service = '.*', environment = '.*', rangeSeconds = 86_400): string {
  return expr
    .replaceAll('$__range_s', String(rangeSeconds))
    .replaceAll('$__range', `${rangeSeconds}s`)
    .replaceAll('$__interval', '1m')
    .replaceAll('$service', service)
    .replaceAll('$environment', environment);
}

const single = async (expr: string) => {
  const result = await prometheus.query(expr);
  expect(result, expr).toHaveLength(1);
  return Number(result[0]!.value[1]);
};

describe.each(['deployments.json', 'dora.json'])('dashboard %s against the real stack', (file) => {
  const { targets, variables } = dashboardTargets(file);

  it.each(targets.map((t) => [t.panel, t.expr]))('panel "%s" returns data with All selected', async (_panel, expr) => {
    const result = await prometheus.query(interpolate(expr));
    expect(result.length, interpolate(expr)).toBeGreaterThan(0);
  });

  it.each(targets.map((t) => [t.panel, t.expr]))(
    'panel "%s" returns data for shop/api in prod (pay, for the series only it has)',
    async (panel, expr) => {
      // Cancelled is the one count that shop/api has none of; it still answers, with 0.
      const service = PAY_SERIES.test(expr) ? 'pay' : 'shop/api';
      const result = await prometheus.query(interpolate(expr, service, 'prod'));
      expect(result.length, `${panel}: ${interpolate(expr, service, 'prod')}`).toBeGreaterThan(0);
    },
  );

  it('fills its service and environment variables from the metrics', async () => {
    for (const definition of variables) {
      const match = /^label_values\((.*), (\w+)\)$/.exec(interpolate(definition))!;
      const response = await fetch(
        `${prometheus.url}/api/v1/label/${match[2]}/values?${new URLSearchParams({ 'match[]': match[1]! })}`,
      );
      const values = ((await response.json()) as { data: string[] }).data;
      expect(values.length, definition).toBeGreaterThan(0);
    }
  });
});

describe('the numbers on the dashboards equal the scripted history', () => {
  const deployments = dashboardTargets('deployments.json').targets;
  const dora = dashboardTargets('dora.json').targets;
  const expr = (targets: DashboardTarget[], panel: string) => targets.find((t) => t.panel === panel)!.expr;

  it('counts every deployment exactly, not extrapolated', async () => {
    expect(await single(interpolate(expr(deployments, 'Deployments')))).toBe(9 + PAY_FINISHED);
    expect(await single(interpolate(expr(deployments, 'Deployments'), 'shop/api', 'prod'))).toBe(4);
    expect(await single(interpolate(expr(deployments, 'Failed'), 'shop/api', 'prod'))).toBe(2);
    expect(await single(interpolate(expr(deployments, 'Successful'), 'shop/web', 'staging'))).toBe(2);
    expect(await single(interpolate(expr(deployments, 'Cancelled'), 'shop/web', 'staging'))).toBe(1);
  });

  it('shows the four keys of shop/api in prod: frequency, lead time, change failure rate, time to restore', async () => {
    const api = (panel: string) => single(interpolate(expr(dora, panel), 'shop/api', 'prod'));
    expect(await api('Deployment frequency')).toBe(2);
    expect(await api('Deployment frequency: band')).toBe(4);
    expect(await api('Lead time for changes')).toBe((3_600 + 5_000 + 4_000) / 3);
    expect(await api('Change failure rate')).toBe(0.5);
    expect(await api('Time to restore')).toBe(2_000);
    expect(await api('Lead time for changes: band')).toBe(4);
    expect(await api('Change failure rate: band')).toBe(1);
    expect(await api('Deployment failure ratio')).toBe(0.5);
    expect(await api('Rollbacks')).toBe(0);
  });

  it('shows the failed changes, recovery time and rework rate of pay in prod, and its incidents and verifications', async () => {
    const pay = (panel: string) => prometheus.query(interpolate(expr(dora, panel), 'pay', 'prod'));
    const one = async (panel: string) => single(interpolate(expr(dora, panel), 'pay', 'prod'));
    expect(await one('Change failure rate')).toBe(PAY_FAILED / PAY_FINISHED);
    expect(await one('Failed deployment recovery time')).toBe(PAY.recoverySum / PAY.recoveryCount);
    expect(await one('Failed deployment recovery time: band')).toBe(4);
    expect(await one('Deployment rework rate')).toBe(PAY.rework / PAY_FINISHED);
    const byReason = Object.fromEntries(
      (await pay('Failed changes by reason')).map((r) => [r.metric.reason, Number(r.value[1])]),
    );
    expect(byReason).toEqual(PAY.failedChanges);
    const annotation = async (name: string) =>
      (await prometheus.query(interpolate(expr(dora, `annotation ${name}`), 'pay', 'prod'))).map((r) => ({
        result: r.metric.result,
        at: Number(r.value[1]) / 1000,
      }));
    expect(await annotation('Verifications')).toEqual([{ result: 'fail', at: PAY.lastVerification }]);
    expect(await annotation('Incidents')).toEqual([{ result: undefined, at: PAY.lastIncident }]);
  });

  it('shows no daily frequency and no band over a range shorter than a day', async () => {
    for (const panel of ['Deployment frequency', 'Deployment frequency: band']) {
      expect(await prometheus.query(interpolate(expr(dora, panel), 'shop/api', 'prod', 3_600)), panel).toEqual([]);
    }
    expect(await single(interpolate(expr(dora, 'Change failure rate'), 'shop/api', 'prod', 3_600))).toBe(0.5);
  });

  it('has recording rules that agree', async () => {
    expect(await single('deployctl:change_failure_rate:ratio_1d{service="shop/api"}')).toBe(0.5);
    expect(await single('deployctl:lead_time_seconds:mean_1d{service="shop/web"}')).toBe(750);
    expect(await single('deployctl:time_to_restore_seconds:mean_7d{service="shop/api"}')).toBe(2_000);
    expect(await single('deployctl:deployments:increase30d{service="shop/web",status="cancelled"}')).toBe(1);
    expect(await single('deployctl:failed_changes:increase1d{service="pay"}')).toBe(PAY_FAILED);
    expect(await single('deployctl:change_failure_rate:ratio_7d{service="pay"}')).toBe(PAY_FAILED / PAY_FINISHED);
    expect(await single('deployctl:failed_deployment_recovery_seconds:mean_30d{service="pay"}')).toBe(
      PAY.recoverySum / PAY.recoveryCount,
    );
    expect(await single('deployctl:deployment_rework_rate:ratio_1d{service="pay"}')).toBe(PAY.rework / PAY_FINISHED);
  });

  it('gives deployctl dora the same numbers', async () => {
    const result = await deployctl(['dora', '--prometheus', prometheus.url, '--window', '1d', '--json'], {
      env,
      cwd: workdir.path,
    });
    expect(result.exitCode, result.stderr).toBe(0);
    const { rows } = JSON.parse(result.stdout) as { rows: Record<string, any>[] };
    const api = rows.find((r) => r.service === 'shop/api')!;
    expect(api.deployments).toEqual({ success: 2, failure: 2, cancelled: 0 });
    expect(api.rollbacks).toBe(0);
    expect(api.deploymentFrequencyPerDay).toEqual({ value: 2, band: 'elite' });
    expect(api.deploymentFailureRate).toBe(0.5);
    expect(api.leadTimeSeconds).toEqual({ value: 4_200, band: 'elite' });
    expect(api.changeFailureRate).toEqual({ value: 0.5, band: 'low' });
    expect(api.timeToRestoreSeconds).toEqual({ value: 2_000, band: 'elite' });
    const web = rows.find((r) => r.service === 'shop/web')!;
    expect(web.changeFailureRate).toEqual({ value: 0, band: 'elite' });
    expect(web.leadTimeSeconds.value).toBe(750);
    expect(web.timeToRestoreSeconds).toEqual({ value: null, band: null });
    expect(rows.map((r) => r.service).sort()).toEqual([
      'example/api',
      'example/api-schema',
      'pay',
      'shop/api',
      'shop/web',
    ]);
    const pay = rows.find((r) => r.service === 'pay')!;
    expect(pay).toMatchObject({
      deployments: PAY.deployments,
      failedChanges: PAY_FAILED,
      failedChangesByReason: PAY.failedChanges,
      reworkDeployments: PAY.rework,
      changeFailureRate: { value: PAY_FAILED / PAY_FINISHED, band: 'low' },
      failedDeploymentRecoveryTimeSeconds: { value: PAY.recoverySum / PAY.recoveryCount, band: 'elite' },
      deploymentReworkRate: { value: PAY.rework / PAY_FINISHED, band: null },
    });
    expect(api.failedChanges).toBe(2);
    expect(api.failedChangesByReason).toEqual({ failure: 2, rollback: 0, verification: 0, incident: 0 });

    const table = await deployctl(['dora', '--prometheus', prometheus.url, '--window', '1d', '-s', 'shop/api'], {
      env,
      cwd: workdir.path,
    });
    expect(table.stdout).toMatch(
      /shop\/api\s+prod\s+4\s+2 \(2 failure\)\s+2\/day \(elite\)\s+1h10m \(elite\)\s+50% \(low\)\s/,
    );

    // One hour says nothing about a daily rate: the count, no band.
    const hour = await deployctl(['dora', '--prometheus', prometheus.url, '--window', '1h', '-s', 'shop/api'], {
      env,
      cwd: workdir.path,
    });
    expect(hour.stdout).toMatch(/shop\/api\s+prod\s+4\s+2 \(2 failure\)\s+2 in 1h\s+1h10m \(elite\)/);
    expect(hour.stdout).toContain('a window shorter than a day gives no daily frequency or band');
    const hourJson = JSON.parse(
      (
        await deployctl(['dora', '--prometheus', prometheus.url, '--window', '1h', '--json', '-s', 'shop/api'], {
          env,
          cwd: workdir.path,
        })
      ).stdout,
    );
    expect(hourJson.rows[0].deploymentFrequencyPerDay).toEqual({ value: null, band: null });
  });

  it('shows the history in deployctl status and passes deployctl doctor with this Prometheus', async () => {
    const status = await deployctl(['status', '--json'], { env, cwd: workdir.path });
    const groups = JSON.parse(status.stdout) as Record<string, any>[];
    const api = groups.find((g) => g.service === 'shop/api')!;
    expect(api).toMatchObject({
      version: '2.0.0',
      status: 'success',
      finishedAt: T0 + 9_000,
      durationSeconds: 120,
      inProgress: false,
      deployments: { success: 2, failure: 2, cancelled: 0 },
    });
    expect(groups.find((g) => g.service === 'pay')).toMatchObject({
      failedChanges: PAY_FAILED,
      openIncidents: { count: 1, since: PAY.lastIncident },
      latestVerification: { result: 'fail', at: PAY.lastVerification },
    });
    const table = await deployctl(['status', '-s', 'pay'], { env, cwd: workdir.path });
    expect(table.stdout).toMatch(/✖ 1 open incident since \S+ \(.+ ago\); ✖ verify fail .+ ago/);
    const doctor = await deployctl(['doctor', '--prometheus', prometheus.url], { env, cwd: workdir.path });
    expect(doctor.stdout).toContain('has honor_labels: true');
    expect(doctor.exitCode, doctor.stdout).toBe(0);
  });
});
