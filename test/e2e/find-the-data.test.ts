import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployctl } from '../helpers/cli.js';
import { eventually, type RunningPrometheus, startPrometheus } from '../helpers/prometheus.js';
import { type RunningServer, startPushgateway, tempDir } from '../helpers/pushgateway.js';
import { RECEIVERS, type RunningReceiver } from '../helpers/victoria-metrics.js';

// `dora` and `status` given only --prometheus find which metric contract the store holds.

const workdir = tempDir();
afterAll(() => workdir.remove());

interface DoraJson {
  rows: { job: string; service: string; environment: string; deployments: Record<string, number> }[];
}
interface StatusJson {
  service: string;
  environment: string;
  status: string;
  version: string;
  deployments: Record<string, number>;
}

describe.each(Object.keys(RECEIVERS) as (keyof typeof RECEIVERS)[])('a %s holding remote-write records', (name) => {
  let receiver: RunningReceiver;
  beforeAll(async () => {
    receiver = await RECEIVERS[name](join(workdir.path, `rw-${name}`));
  });
  afterAll(async () => {
    await receiver?.stop();
  });

  it('dora and status without --remote-write read its ledger and say so', async () => {
    const service = `ledger-${name}`;
    const now = Math.floor(Date.now() / 1000);
    // The test's own script, and the oracle computed from it.
    const history = [
      { status: 'success', version: 'v1', finishedAt: now - 3_600 },
      { status: 'failure', version: 'v2', finishedAt: now - 1_800 },
      { status: 'success', version: 'v3', finishedAt: now - 600 },
    ];
    const expected = { success: 2, failure: 1, cancelled: 0 };
    const stateDir = join(workdir.path, `state-${name}`);
    for (const deployment of history) {
      const result = await deployctl(
        [
          'record',
          ...['--remote-write', receiver.writeUrl, '-s', service, '-e', 'prod'],
          ...['--status', deployment.status, '--version', deployment.version],
          ...['--finished-at', String(deployment.finishedAt)],
        ],
        { env: { DEPLOYCTL_STATE_DIR: stateDir } },
      );
      expect(result.exitCode, result.stderr).toBe(0);
    }
    await receiver.flush();
    const read = (command: 'dora' | 'status') =>
      deployctl([command, '--prometheus', receiver.url, '--json', '-s', service, '-e', 'prod'], {
        env: { DEPLOYCTL_STATE_DIR: stateDir },
      });

    const dora = await eventually(
      () => read('dora'),
      (r) => r.exitCode === 0 && (JSON.parse(r.stdout) as DoraJson).rows.length > 0,
    );
    expect(dora.exitCode, dora.stderr).toBe(0);
    expect(dora.stderr).toContain(`reading remote-write ledger series from ${receiver.url}`);
    const rows = (JSON.parse(dora.stdout) as DoraJson).rows;
    expect(rows.map((r) => [r.job, r.service, r.environment])).toEqual([['deployctl', service, 'prod']]);
    expect(rows[0]!.deployments).toMatchObject(expected);

    const status = await read('status');
    expect(status.exitCode, status.stderr).toBe(0);
    expect(status.stderr).toContain(`reading remote-write ledger series from ${receiver.url}`);
    const groups = JSON.parse(status.stdout) as StatusJson[];
    expect(groups).toHaveLength(1);
    expect(groups[0]).toMatchObject({ service, environment: 'prod', status: 'success', version: 'v3' });
    expect(groups[0]!.deployments).toMatchObject(expected);
  });
});

describe('a Prometheus scraping gateways without honor_labels', () => {
  let honored: RunningServer;
  let unhonored: RunningServer;
  let prometheus: RunningPrometheus;
  const stateDir = join(workdir.path, 'state-gateways');
  beforeAll(async () => {
    [honored, unhonored] = await Promise.all([startPushgateway(), startPushgateway()]);
    mkdirSync(join(workdir.path, 'scraping'));
    prometheus = await startPrometheus(join(workdir.path, 'scraping'), honored.url, [], {
      unhonoredGateways: [unhonored.url],
    });
  });
  afterAll(async () => {
    await Promise.all([prometheus?.stop(), honored?.stop(), unhonored?.stop()]);
  });

  const record = (gateway: string, service: string) =>
    deployctl(['record', '--pushgateway', gateway, '-s', service, '-e', 'prod', '--status', 'success'], {
      env: { DEPLOYCTL_STATE_DIR: stateDir },
    });
  const scraped = (selector: string) =>
    eventually(
      () => prometheus.query(`count(deployctl_deployments_total${selector})`),
      (v) => v.length > 0,
    );

  it('dora shows the groups scraped with honor_labels and names those scraped without it', async () => {
    expect((await record(honored.url, 'kept')).exitCode).toBe(0);
    expect((await record(unhonored.url, 'renamed')).exitCode).toBe(0);
    await scraped('{job="deployctl", service="kept"}');
    await scraped('{exported_job="deployctl", service="renamed"}');

    const dora = await deployctl(['dora', '--pushgateway', honored.url, '--prometheus', prometheus.url, '--json'], {
      env: { DEPLOYCTL_STATE_DIR: stateDir },
    });
    expect(dora.exitCode, dora.stderr).toBe(0);
    expect((JSON.parse(dora.stdout) as DoraJson).rows.map((r) => r.service)).toEqual(['kept']);
    expect(dora.stderr).toContain(`reading Pushgateway totals scraped by ${prometheus.url}`);
    expect(dora.stderr).toContain(
      'left out 1 group that Prometheus scrapes without honor_labels (job renamed to exported_job, scrape job "generic"): renamed/prod',
    );
  });

  it('dora with only groups scraped without honor_labels says so and exits 1', async () => {
    const result = await deployctl(
      [
        'record',
        '--pushgateway',
        unhonored.url,
        '--job',
        'only-renamed',
        '-s',
        'lone',
        '-e',
        'prod',
        '--status',
        'success',
      ],
      { env: { DEPLOYCTL_STATE_DIR: stateDir } },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    await scraped('{exported_job="only-renamed"}');
    const dora = await deployctl(['dora', '--job', 'only-renamed', '--prometheus', prometheus.url], {
      env: { DEPLOYCTL_STATE_DIR: stateDir },
    });
    expect(dora.exitCode).toBe(1);
    expect(dora.stderr).toContain(`reading Pushgateway totals scraped by ${prometheus.url}`);
    expect(dora.stderr).toContain('it scrapes the Pushgateway without honor_labels');
  });
});
