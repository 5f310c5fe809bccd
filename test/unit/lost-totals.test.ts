import { describe, expect, it } from 'vitest';
import { continueTotals, loweredTotals } from '../../src/backends/pushgateway/lost-totals.js';
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
