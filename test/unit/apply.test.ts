import { describe, expect, it } from 'vitest';
import { applyDeployment, GroupConflictError, REMEMBERED_RECORDS, type DeploymentRecord } from '../../src/metrics/apply.js';
import { FAMILIES } from '../../src/metrics/families.js';
import type { Family, GroupState, HistogramFamily, ScalarFamily } from '../../src/metrics/model.js';

const base: DeploymentRecord = { id: 'r1', status: 'success', finishedAt: 1_000, version: '1.0', commit: 'abc', labels: {} };

/** What the gateway would hold after pushing these families on top of the state (POST semantics). */
function pushed(state: GroupState, families: Family[]): GroupState {
  const next = new Map(state);
  for (const family of families) next.set(family.name, family);
  return next;
}

function history(records: Partial<DeploymentRecord>[]): GroupState {
  let state: GroupState = new Map();
  records.forEach((r, i) => {
    state = pushed(state, applyDeployment(state, { ...base, id: `r${i}`, ...r }, 2_000 + i).families);
  });
  return state;
}

const scalar = (state: GroupState, name: string) => (state.get(name) as ScalarFamily | undefined)?.series;
const histogram = (state: GroupState, name: string) => (state.get(name) as HistogramFamily | undefined)?.series;

describe('applyDeployment', () => {
  it('counts every status from zero and carries totals forward', () => {
    const state = history([{ status: 'success' }, { status: 'failure' }, { status: 'success' }]);
    expect(scalar(state, FAMILIES.deployments.name)).toEqual([
      { labels: { status: 'success' }, value: 2 },
      { labels: { status: 'failure' }, value: 1 },
      { labels: { status: 'cancelled' }, value: 0 },
    ]);
  });

  it('adds each duration to cumulative buckets, sum and count of its status', () => {
    const state = history([{ durationSeconds: 3 }, { durationSeconds: 45 }, { durationSeconds: 5000 }]);
    const [series] = histogram(state, FAMILIES.deploymentDuration.name)!;
    expect(series!.labels).toEqual({ status: 'success' });
    expect(series!.count).toBe(3);
    expect(series!.sum).toBe(5048);
    expect(series!.buckets.map((b) => [b.le, b.count])).toEqual([
      [1, 0], [5, 1], [10, 1], [30, 1], [60, 2], [120, 2], [300, 2], [600, 2], [900, 2], [1800, 2], [3600, 2], [7200, 3],
    ]);
  });

  it('leaves the duration histogram alone when the duration is unknown', () => {
    const state = history([{}]);
    expect(state.has(FAMILIES.deploymentDuration.name)).toBe(false);
  });

  it('keeps the last success and failure times and describes the last deployment', () => {
    const state = history([
      { status: 'failure', finishedAt: 100 },
      { status: 'success', finishedAt: 200, version: '2.0' },
      { status: 'cancelled', finishedAt: 300, version: '3.0', commit: 'def' },
    ]);
    expect(scalar(state, FAMILIES.lastFailure.name)).toEqual([{ labels: {}, value: 100 }]);
    expect(scalar(state, FAMILIES.lastSuccess.name)).toEqual([{ labels: {}, value: 200 }]);
    expect(scalar(state, FAMILIES.lastDeployment.name)).toEqual([{ labels: {}, value: 300 }]);
    expect(scalar(state, FAMILIES.info.name)).toEqual([{ labels: { version: '3.0', commit: 'def', status: 'cancelled' }, value: 1 }]);
  });

  it('does not move the last-deployment gauges back for a record that finished earlier', () => {
    const state = history([
      { status: 'success', finishedAt: 500, version: 'new' },
      { status: 'success', finishedAt: 100, version: 'old' },
    ]);
    expect(scalar(state, FAMILIES.lastDeployment.name)).toEqual([{ labels: {}, value: 500 }]);
    expect(scalar(state, FAMILIES.lastSuccess.name)).toEqual([{ labels: {}, value: 500 }]);
    expect(scalar(state, FAMILIES.info.name)?.[0]?.labels.version).toBe('new');
    expect(scalar(state, FAMILIES.deployments.name)?.[0]?.value).toBe(2);
  });

  it('observes one time to restore from the first failure of a streak to the success', () => {
    const state = history([
      { status: 'success', finishedAt: 50 },
      { status: 'failure', finishedAt: 100 },
      { status: 'cancelled', finishedAt: 150 },
      { status: 'failure', finishedAt: 400 },
      { status: 'success', finishedAt: 1_000 },
      { status: 'success', finishedAt: 2_000 },
    ]);
    const [restore] = histogram(state, FAMILIES.timeToRestore.name)!;
    expect(restore!.count).toBe(1);
    expect(restore!.sum).toBe(900);
    expect(scalar(state, FAMILIES.failingSince.name)).toEqual([{ labels: {}, value: 0 }]);
  });

  it('observes each lead time once', () => {
    const state = history([{ leadTimes: [100, 7_200] }, { leadTimes: [30] }]);
    const [lead] = histogram(state, FAMILIES.leadTime.name)!;
    expect(lead!.count).toBe(3);
    expect(lead!.sum).toBe(7_330);
  });

  it('keeps series of other extra labels apart', () => {
    const state = history([{ labels: { team: 'a' } }, { labels: { team: 'b' } }, { labels: { team: 'a' } }]);
    const counts = scalar(state, FAMILIES.deployments.name)!.filter((s) => s.labels.status === 'success');
    expect(counts).toEqual([
      { labels: { status: 'success', team: 'a' }, value: 2 },
      { labels: { status: 'success', team: 'b' }, value: 1 },
    ]);
  });

  it('does not count a record the group has already applied', () => {
    const state = history([{}]);
    const again = applyDeployment(state, { ...base, id: 'r0' }, 3_000);
    expect(again).toEqual({ families: [], duplicate: true });
  });

  it(`remembers the newest ${REMEMBERED_RECORDS} record identities`, () => {
    const state = history(Array.from({ length: REMEMBERED_RECORDS + 5 }, () => ({})));
    const ids = scalar(state, FAMILIES.appliedRecords.name)!.map((s) => s.labels.record_id);
    expect(ids).toHaveLength(REMEMBERED_RECORDS);
    expect(ids[0]).toBe(`r${REMEMBERED_RECORDS + 4}`);
    expect(ids).not.toContain('r4');
    expect(ids).toContain('r5');
  });

  it('does not change the state it is given', () => {
    const state = history([{ durationSeconds: 10 }]);
    const before = JSON.stringify([...state]);
    applyDeployment(state, { ...base, id: 'new', durationSeconds: 20 }, 5_000);
    expect(JSON.stringify([...state])).toBe(before);
  });

  it('refuses a family of another type or other buckets, naming it', () => {
    const wrongType: GroupState = new Map([[FAMILIES.deployments.name, { name: FAMILIES.deployments.name, help: '', type: 'gauge', series: [] }]]);
    expect(() => applyDeployment(wrongType, base, 1)).toThrow(GroupConflictError);
    expect(() => applyDeployment(wrongType, base, 1)).toThrow(/deployctl_deployments_total as a gauge, but deployctl pushes it as a counter/);

    const otherBuckets: GroupState = new Map([
      [FAMILIES.deploymentDuration.name, {
        name: FAMILIES.deploymentDuration.name, help: '', type: 'histogram',
        series: [{ labels: { status: 'success' }, buckets: [{ le: 1, count: 0 }], sum: 0, count: 0 }],
      }],
    ]);
    expect(() => applyDeployment(otherBuckets, { ...base, durationSeconds: 1 }, 1)).toThrow(/deployctl_deployment_duration_seconds with the buckets 1/);
  });
});
