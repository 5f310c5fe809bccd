import { describe, expect, it } from 'vitest';
import { applyRecord, GroupConflictError, REMEMBERED_RECORDS, type DeploymentRecord } from '../../src/metrics/apply.js';
import { FAMILIES } from '../../src/metrics/families.js';
import type { Family, GroupState, HistogramFamily, ScalarFamily } from '../../src/metrics/model.js';

const base: DeploymentRecord = { kind: 'deployment', id: 'r1', status: 'success', finishedAt: 1_000, version: '1.0', commit: 'abc', labels: {} };

/** What the gateway would hold after pushing these families on top of the state (POST semantics). */
function pushed(state: GroupState, families: Family[]): GroupState {
  const next = new Map(state);
  for (const family of families) next.set(family.name, family);
  return next;
}

function history_(records: Partial<DeploymentRecord>[]): GroupState {
  let state: GroupState = new Map();
  records.forEach((r, i) => {
    state = pushed(state, applyRecord(state, { ...base, id: `r${i}`, ...r }, 2_000 + i).families);
  });
  return state;
}

const scalar = (state: GroupState, name: string) => (state.get(name) as ScalarFamily | undefined)?.series;
const histogram = (state: GroupState, name: string) => (state.get(name) as HistogramFamily | undefined)?.series;

describe('applyDeployment', () => {
  it('counts every status from zero and carries totals forward', () => {
    const state = history_([{ status: 'success' }, { status: 'failure' }, { status: 'success' }]);
    expect(scalar(state, FAMILIES.deployments.name)).toEqual([
      { labels: { status: 'success' }, value: 2 },
      { labels: { status: 'failure' }, value: 1 },
      { labels: { status: 'cancelled' }, value: 0 },
    ]);
  });

  it('adds each duration to cumulative buckets, sum and count of its status', () => {
    const state = history_([{ durationSeconds: 3 }, { durationSeconds: 45 }, { durationSeconds: 5000 }]);
    const [series] = histogram(state, FAMILIES.deploymentDuration.name)!;
    expect(series!.labels).toEqual({ status: 'success' });
    expect(series!.count).toBe(3);
    expect(series!.sum).toBe(5048);
    expect(series!.buckets.map((b) => [b.le, b.count])).toEqual([
      [1, 0], [5, 1], [10, 1], [30, 1], [60, 2], [120, 2], [300, 2], [600, 2], [900, 2], [1800, 2], [3600, 2], [7200, 3],
    ]);
  });

  it('leaves the duration histogram alone when the duration is unknown', () => {
    const state = history_([{}]);
    expect(state.has(FAMILIES.deploymentDuration.name)).toBe(false);
  });

  it('keeps the last success and failure times and describes the last deployment', () => {
    const state = history_([
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
    const state = history_([
      { status: 'success', finishedAt: 500, version: 'new' },
      { status: 'success', finishedAt: 100, version: 'old' },
    ]);
    expect(scalar(state, FAMILIES.lastDeployment.name)).toEqual([{ labels: {}, value: 500 }]);
    expect(scalar(state, FAMILIES.lastSuccess.name)).toEqual([{ labels: {}, value: 500 }]);
    expect(scalar(state, FAMILIES.info.name)?.[0]?.labels.version).toBe('new');
    expect(scalar(state, FAMILIES.deployments.name)?.[0]?.value).toBe(2);
  });

  it('observes one time to restore from the first failure of a streak to the success', () => {
    const state = history_([
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

  it('observes the lead time of each newly deployed commit once, on successes only', () => {
    const node = (sha: string, time: number, ...parents: string[]) => ({ sha, time, parents });
    const history = [node('c4', 400, 'c3'), node('c3', 300, 'c2'), node('c2', 200, 'c1'), node('c1', 100)];
    const state = history_([
      { commit: 'c1', history: history.slice(3), finishedAt: 1_000 },
      { commit: 'c3', history: history.slice(1), finishedAt: 2_000, status: 'failure' },
      { commit: 'c4', history, finishedAt: 3_000 },
    ]);
    const [lead] = histogram(state, FAMILIES.leadTime.name)!;
    // c1 alone at first; the failure brings nothing; then c2, c3 and c4 (all after c1).
    expect(lead!.count).toBe(4);
    expect(lead!.sum).toBe(900 + (3_000 - 200) + (3_000 - 300) + (3_000 - 400));
  });

  it('takes --commit-time over the history', () => {
    const state = history_([{ commit: 'c9', commitTime: 400, finishedAt: 1_000 }]);
    expect(histogram(state, FAMILIES.leadTime.name)![0]!.sum).toBe(600);
  });

  it('keeps series of other extra labels apart', () => {
    const state = history_([{ labels: { team: 'a' } }, { labels: { team: 'b' } }, { labels: { team: 'a' } }]);
    const counts = scalar(state, FAMILIES.deployments.name)!.filter((s) => s.labels.status === 'success');
    expect(counts).toEqual([
      { labels: { status: 'success', team: 'a' }, value: 2 },
      { labels: { status: 'success', team: 'b' }, value: 1 },
    ]);
  });

  it('does not count a record the group has already applied', () => {
    const state = history_([{}]);
    const again = applyRecord(state, { ...base, id: 'r0' }, 3_000);
    expect(again).toEqual({ families: [], duplicate: true, notices: [] });
  });

  it(`remembers the newest ${REMEMBERED_RECORDS} record identities`, () => {
    const state = history_(Array.from({ length: REMEMBERED_RECORDS + 5 }, () => ({})));
    const ids = scalar(state, FAMILIES.appliedRecords.name)!.map((s) => s.labels.record_id);
    expect(ids).toHaveLength(REMEMBERED_RECORDS);
    expect(ids[0]).toBe(`r${REMEMBERED_RECORDS + 4}`);
    expect(ids).not.toContain('r4');
    expect(ids).toContain('r5');
  });

  it('does not change the state it is given', () => {
    const state = history_([{ durationSeconds: 10 }]);
    const before = JSON.stringify([...state]);
    applyRecord(state, { ...base, id: 'new', durationSeconds: 20 }, 5_000);
    expect(JSON.stringify([...state])).toBe(before);
  });

  it('refuses a family of another type or other buckets, naming it', () => {
    const wrongType: GroupState = new Map([[FAMILIES.deployments.name, { name: FAMILIES.deployments.name, help: '', type: 'gauge', series: [] }]]);
    expect(() => applyRecord(wrongType, base, 1)).toThrow(GroupConflictError);
    expect(() => applyRecord(wrongType, base, 1)).toThrow(/deployctl_deployments_total as a gauge, but deployctl pushes it as a counter/);

    const otherLabels: GroupState = new Map([[FAMILIES.deployments.name, { name: FAMILIES.deployments.name, help: '', type: 'counter', series: [{ labels: { result: 'ok' }, value: 3 }] }]]);
    expect(() => applyRecord(otherLabels, base, 1)).toThrow(/deployctl_deployments_total with the labels \{result\}, but deployctl's series all have \{status\}/);

    const otherBuckets: GroupState = new Map([
      [FAMILIES.deploymentDuration.name, {
        name: FAMILIES.deploymentDuration.name, help: '', type: 'histogram',
        series: [{ labels: { status: 'success' }, buckets: [{ le: 1, count: 0 }], sum: 0, count: 0 }],
      }],
    ]);
    expect(() => applyRecord(otherBuckets, { ...base, durationSeconds: 1 }, 1)).toThrow(/deployctl_deployment_duration_seconds with the buckets 1/);
  });
});
