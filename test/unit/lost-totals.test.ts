import { describe, expect, it } from 'vitest';
import type { Sample } from '../../src/adapters/prometheus.js';
import { continueTotals, loweredTotals, snapshotState } from '../../src/backends/pushgateway/lost-totals.js';
import type { Family, GroupState, HistogramFamily, ScalarFamily } from '../../src/backends/pushgateway/model.js';
import { FAMILIES } from '../../src/core/families.js';

const counter = (values: Record<string, number>): ScalarFamily => ({
  name: FAMILIES.deployments.name,
  help: '',
  type: 'counter',
  series: Object.entries(values).map(([status, value]) => ({ labels: { status }, value })),
});
const lead = (count: number, sum: number): HistogramFamily => ({
  name: FAMILIES.leadTime.name,
  help: '',
  type: 'histogram',
  series: [{ labels: {}, buckets: [{ le: 300, count }], sum, count }],
});
const memory = (ids: string[]): ScalarFamily => ({
  name: FAMILIES.appliedRecords.name,
  help: '',
  type: 'gauge',
  series: ids.map((id, i) => ({ labels: { record_id: id }, value: i + 1 })),
});
const state = (...families: Family[]): GroupState => new Map(families.map((f) => [f.name, f]));

describe('continueTotals', () => {
  it('leaves a gateway that is ahead of Prometheus alone', () => {
    const onGateway = state(counter({ success: 5, failure: 1 }), memory(['a', 'b']));
    const result = continueTotals(onGateway, state(counter({ success: 4, failure: 1 }), memory(['z'])));
    expect(result.lowered).toEqual([]);
    expect(result.state).toBe(onGateway);
  });

  it('takes every lower or missing total from Prometheus and adds what its memories saw', () => {
    const onGateway = state(counter({ success: 1, failure: 0 }), memory(['new']));
    const scraped = state(counter({ success: 5, failure: 2, cancelled: 1 }), lead(3, 600), memory(['a', 'b']));
    const result = continueTotals(onGateway, scraped);
    expect(result.lowered).toEqual([
      'deployctl_deployments_total{status="success"}',
      'deployctl_deployments_total{status="failure"}',
      'deployctl_deployments_total{status="cancelled"}',
      'deployctl_lead_time_seconds',
    ]);
    expect(
      (result.state.get(FAMILIES.deployments.name) as ScalarFamily).series.map((s) => [s.labels.status, s.value]),
    ).toEqual([
      ['success', 5],
      ['failure', 2],
      ['cancelled', 1],
    ]);
    expect(result.state.get(FAMILIES.leadTime.name)).toEqual(lead(3, 600));
    expect(
      (result.state.get(FAMILIES.appliedRecords.name) as ScalarFamily).series.map((s) => s.labels.record_id).sort(),
    ).toEqual(['a', 'b', 'new']);
    expect(result.changed.map((f) => f.name).sort()).toEqual(
      [FAMILIES.appliedRecords.name, FAMILIES.deployments.name, FAMILIES.leadTime.name].sort(),
    );
  });

  it('finds a group the gateway lost entirely', () => {
    expect(loweredTotals(new Map(), state(counter({ success: 2 })))).toEqual([
      'deployctl_deployments_total{status="success"}',
    ]);
  });
});

describe('continueTotals and gauges', () => {
  const gauge = (name: string, value: number, labels: Record<string, string> = {}): ScalarFamily => ({
    name,
    help: '',
    type: 'gauge',
    series: [{ labels, value }],
  });

  it('keeps a gauge the gateway holds (newer) and takes one it lacks from Prometheus', () => {
    const onGateway = state(counter({ success: 1 }), gauge(FAMILIES.lastDeployment.name, 2_000_000_000));
    const scraped = state(
      counter({ success: 4 }),
      gauge(FAMILIES.lastDeployment.name, 1_900_000_000),
      gauge(FAMILIES.lastSuccessInfo.name, 1, { version: '1.0', commit: 'abc' }),
    );
    const result = continueTotals(onGateway, scraped);
    expect((result.state.get(FAMILIES.lastDeployment.name) as ScalarFamily).series[0]!.value).toBe(2_000_000_000);
    expect(result.state.get(FAMILIES.lastSuccessInfo.name)).toEqual(scraped.get(FAMILIES.lastSuccessInfo.name));
    expect(result.changed.map((f) => f.name).sort()).toEqual(
      [FAMILIES.deployments.name, FAMILIES.lastSuccessInfo.name].sort(),
    );
  });
});

describe('snapshotState', () => {
  const grouping = { job: 'deployctl', service: 'web', environment: 'prod' };
  const where = { ...grouping, pushgateway: '10.0.0.1:9091' };
  const expected = { grouping, matchers: { pushgateway: '10.0.0.1:9091' }, now: 1_800_000_000 };
  const sample = (name: string, value: number, labels: Record<string, string> = {}): Sample => ({
    labels: { __name__: name, ...where, ...labels },
    value,
  });
  const lead = FAMILIES.leadTime.name;

  it("reads a group's counters, gauges and histograms, without the labels that say where they came from", () => {
    const { state: scraped, refused } = snapshotState(
      [
        sample(FAMILIES.deployments.name, 4, { status: 'success' }),
        sample(FAMILIES.recordsApplied.name, 5),
        sample(FAMILIES.lastDeployment.name, 1_700_000_000),
        sample(FAMILIES.inProgress.name, 0),
        sample(FAMILIES.lastDuration.name, Number.NaN),
        ...FAMILIES.leadTime.buckets.map((le) =>
          sample(`${lead}_bucket`, le < 900 ? 1 : le < 1_800 ? 2 : 3, { le: String(le) }),
        ),
        sample(`${lead}_bucket`, 3, { le: '+Inf' }),
        sample(`${lead}_sum`, 2_000),
        sample(`${lead}_count`, 3),
        sample('deployctl_something_newer_total', 7),
      ],
      expected,
    );
    expect(refused).toEqual([]);
    expect((scraped.get(FAMILIES.deployments.name) as ScalarFamily).series).toEqual([
      { labels: { status: 'success' }, value: 4 },
    ]);
    const histogram = (scraped.get(lead) as HistogramFamily).series[0]!;
    expect(histogram.labels).toEqual({});
    expect(histogram.count).toBe(3);
    expect(histogram.sum).toBe(2_000);
    expect(histogram.buckets.slice(0, 3)).toEqual([
      { le: 300, count: 1 },
      { le: 900, count: 2 },
      { le: 1_800, count: 3 },
    ]);
    expect([...scraped.keys()]).not.toContain('deployctl_something_newer_total');
  });

  it.each([
    [sample(FAMILIES.deployments.name, 1e300, { status: 'success' }), '= 1e+300, which no total can be'],
    [sample(FAMILIES.deployments.name, Number.NaN, { status: 'success' }), '= NaN, which no total can be'],
    [sample(FAMILIES.deployments.name, -1, { status: 'success' }), '= -1, which no total can be'],
    [sample(FAMILIES.recordsApplied.name, 2.5), '= 2.5, which no total can be'],
    [sample(FAMILIES.recordsApplied.name, 1e9 + 1), 'which no total can be (a whole number from 0 to 1e9)'],
    [sample(`${lead}_count`, Number.POSITIVE_INFINITY), 'which no count can be'],
    [sample(`${lead}_sum`, -5), 'which no sum of observations can be'],
    [sample(FAMILIES.lastDeployment.name, 1_900_000_000), 'which is no time deployctl writes'],
    [sample(FAMILIES.inProgress.name, 3), 'which is neither 0 nor 1'],
    [sample(FAMILIES.deployments.name, 3, { job: 'other' }), 'is a series of another job or group (job "other"'],
    [sample(FAMILIES.deployments.name, 3, { exported_job: 'deployctl' }), 'carries exported_job'],
    [sample(FAMILIES.deployments.name, 3, { pushgateway: '10.0.0.2:9091' }), 'was not scraped from this gateway'],
  ])('refuses the whole snapshot for %j', (bad, reason) => {
    const { state: scraped, refused } = snapshotState(
      [sample(FAMILIES.deployments.name, 2, { status: 'failure' }), bad],
      expected,
    );
    expect(scraped.size).toBe(0);
    expect(refused).toHaveLength(1);
    expect(refused[0]).toContain(reason);
  });

  it('refuses buckets that are not cumulative', () => {
    const { refused } = snapshotState(
      [
        sample(`${lead}_bucket`, 3, { le: '300' }),
        sample(`${lead}_bucket`, 1, { le: '900' }),
        sample(`${lead}_count`, 3),
      ],
      expected,
    );
    expect(refused).toEqual(['deployctl_lead_time_seconds has buckets that are not cumulative']);
  });

  it('shows label values from the server as text, control characters escaped', () => {
    const { refused } = snapshotState(
      [sample(FAMILIES.deployments.name, 1e300, { status: 'x\u001b[2J\u009b' })],
      expected,
    );
    expect(refused[0]).toContain('status="x\\u001b[2J\\u009b"');
  });
});
