import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ledgerDoraQueries, meanDurationQuery, selector } from '../../src/backends/remote-write/promql.js';
import { deployctl } from '../helpers/cli.js';
import { eventually } from '../helpers/prometheus.js';
import { startProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/pushgateway.js';
import { RECEIVERS, type RunningReceiver } from '../helpers/victoria-metrics.js';

const HOUR = 3_600;
const DAY = 86_400;
const workdir = tempDir();
afterAll(() => workdir.remove());

type Vector = { metric: Record<string, string>; value: [number, string] }[];
const byStatus = (vector: Vector) => Object.fromEntries(vector.map((s) => [s.metric.status, Number(s.value[1])]));
const scalarOf = (vector: Vector) => (vector.length === 1 ? Number(vector[0]!.value[1]) : undefined);
/** JSON with object keys sorted, to compare query results whatever their order. */
const canonical = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v));

describe.each(Object.keys(RECEIVERS) as (keyof typeof RECEIVERS)[])('remote-write to %s', (name) => {
  let receiver: RunningReceiver;
  let n = 0;
  /** A group of its own for each test, and a state directory per machine. */
  const group = (what: string) => ({ service: `${what}-${name}-${++n}`, environment: 'prod' });
  const env = (machine: string, writeUrl = receiver.writeUrl, extra: Record<string, string> = {}) => ({
    DEPLOYCTL_REMOTE_WRITE_URL: writeUrl,
    DEPLOYCTL_PROMETHEUS_URL: receiver.url,
    DEPLOYCTL_STATE_DIR: join(workdir.path, name, machine),
    ...extra,
  });
  const target = (g: { service: string; environment: string }) => ['-s', g.service, '-e', g.environment];
  const sel = (g: { service: string; environment: string }) => selector({ job: 'deployctl', service: g.service, environment: g.environment }, '=');
  /** A query that waits for the store to show `expected` (VictoriaMetrics indexes new series within seconds). */
  const settle = <T>(get: () => Promise<T>, expected: T) => eventually(get, (v) => canonical(v) === canonical(expected), 20_000);

  beforeAll(async () => {
    receiver = await RECEIVERS[name](join(workdir.path, name));
  });
  afterAll(async () => {
    await receiver?.stop();
  });

  it('20 machines recording one group at once are all counted', async () => {
    const g = group('concurrent');
    const now = Math.floor(Date.now() / 1000);
    const statuses = Array.from({ length: 20 }, (_, i) => (['success', 'failure', 'cancelled'] as const)[i % 3]!);
    const results = await Promise.all(
      statuses.map((status, i) =>
        deployctl(['record', ...target(g), '--status', status, '--commit', `c${i}`, '--finished-at', String(now - 60 + i), '--duration', String(i + 1)], {
          env: env(`machine-${i}`),
          timeout: 60_000,
        }),
      ),
    );
    for (const r of results) expect(r.exitCode, r.stderr).toBe(0);
    const expected = { success: 7, failure: 7, cancelled: 6 };
    const q = ledgerDoraQueries(sel(g), '1h', String(1 / 24));
    expect(await settle(async () => byStatus(await receiver.query(q.deploymentsByStatus)), expected)).toEqual(expected);
    const durations = byStatus(await receiver.query(meanDurationQuery(sel(g), '1h')));
    // Durations i+1 for i = 0..19, by i % 3.
    expect(durations).toEqual({ success: (1 + 4 + 7 + 10 + 13 + 16 + 19) / 7, failure: (2 + 5 + 8 + 11 + 14 + 17 + 20) / 7, cancelled: (3 + 6 + 9 + 12 + 15 + 18) / 6 });
  }, 120_000);
});
