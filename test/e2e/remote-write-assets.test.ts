import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

describe.each(Object.keys(RECEIVERS) as (keyof typeof RECEIVERS)[])('remote-write dashboards on %s', (name) => {
  const workdir = tempDir();
  const service = `panels-${name}`;
  let receiver: RunningReceiver;

  beforeAll(async () => {
    receiver = await RECEIVERS[name](workdir.path);
    const env = { DEPLOYCTL_REMOTE_WRITE_URL: receiver.writeUrl, DEPLOYCTL_STATE_DIR: join(workdir.path, 'state') };
    const now = Math.floor(Date.now() / 1000);
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

  it('shows the group in progress after deployctl start', async () => {
    const dashboard = dashboardQueries('deployments.json').find((q) => q.title === 'In progress')!;
    expect(Number((await receiver.query(interpolate(dashboard.expr, service)))[0]!.value[1])).toBe(1);
  });
});
