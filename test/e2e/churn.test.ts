import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployctl, scrape } from '../helpers/cli.js';
import { select, value } from '../helpers/exposition.js';
import { eventually, type RunningPrometheus, startPrometheus } from '../helpers/prometheus.js';
import { type RunningServer, startPushgateway, tempDir } from '../helpers/pushgateway.js';

/**
 * Recording never churns the user's Prometheus: with the example scrape job
 * (examples/prometheus/prometheus.yml), a group holds the same series in Prometheus after any
 * number of records as after a few.
 */

const workdir = tempDir();
let gateway: RunningServer;
let prometheus: RunningPrometheus;
const SERVICE = 'churn/api';

beforeAll(async () => {
  gateway = await startPushgateway();
  prometheus = await startPrometheus(workdir.path, gateway.url);
});
afterAll(async () => {
  await prometheus?.stop();
  await gateway?.stop();
  workdir.remove();
});

/** Every series of the group Prometheus has held since the test began, live or not. */
async function seriesEver(since: number): Promise<string[]> {
  const params = new URLSearchParams({
    'match[]': `{job="deployctl", service="${SERVICE}"}`,
    start: String(since),
    end: String(Date.now() / 1000 + 60),
  });
  const response = await fetch(`${prometheus.url}/api/v1/series?${params}`);
  const body = (await response.json()) as { data: Record<string, string>[] };
  return body.data.map((labels) => JSON.stringify(labels)).sort();
}

/** Records `count` successful deployments of the group, each its own process, with one version and commit. */
async function recordMany(count: number): Promise<void> {
  const env = {
    DEPLOYCTL_PUSHGATEWAY_URL: gateway.url,
    DEPLOYCTL_STATE_DIR: join(workdir.path, 'state'),
    DEPLOYCTL_PROMETHEUS_URL: prometheus.url,
  };
  for (let i = 0; i < count; i++) {
    const args = ['record', '-s', SERVICE, '-e', 'prod', '--status', 'success'];
    const result = await deployctl([...args, '--version', '1.4.0', '--commit', 'a'.repeat(40), '--duration', '30'], {
      env,
      cwd: workdir.path,
    });
    expect(result.exitCode, result.stderr).toBe(0);
  }
}

/** Waits until Prometheus has scraped the group at this record sequence, and once more after. */
async function scrapedAt(sequence: number): Promise<void> {
  const query = `deployctl_records_applied_total{service="${SERVICE}"}`;
  const seen = await eventually(
    () => prometheus.query(query),
    (r) => r[0]?.value[1] === String(sequence),
    30_000,
  );
  expect(seen[0]?.value[1]).toBe(String(sequence));
  const at = seen[0]!.value[0];
  await eventually(
    () => prometheus.query(`timestamp(${query})`),
    (r) => Number(r[0]?.value[1]) > at,
    10_000,
  );
}

describe('recording with the example scrape job', () => {
  it('leaves the same series in Prometheus after 60 records of a group as after 10', async () => {
    const since = Date.now() / 1000 - 60;
    await recordMany(10);
    await scrapedAt(10);
    const after10 = await seriesEver(since);

    await recordMany(50);
    await scrapedAt(60);
    const after60 = await seriesEver(since);

    expect(after60.length).toBeGreaterThan(20);
    expect(after60).toEqual(after10);
    // The bookkeeping stays on the gateway, where deployctl reads it; Prometheus never held it.
    const samples = await scrape(gateway.url);
    expect(select(samples, 'deployctl_applied_record_timestamp_seconds', { service: SERVICE })).toHaveLength(60);
    expect(after60.filter((s) => /applied_record|deployed_commit/.test(s))).toEqual([]);
    // The totals Prometheus holds are right.
    expect(value(samples, 'deployctl_deployments_total', { service: SERVICE, status: 'success' })).toBe(60);
    const total = await prometheus.query(`deployctl_deployments_total{service="${SERVICE}", status="success"}`);
    expect(total.map((r) => r.value[1])).toEqual(['60']);
    console.log(`series of one group in Prometheus: ${after10.length} after 10 records, ${after60.length} after 60`);
  }, 180_000);
});
