import { describe, expect, it } from 'vitest';
import {
  applyRecord,
  GroupConflictError,
  REMEMBERED_COMMITS,
  REMEMBERED_RECORDS,
} from '../../src/backends/pushgateway/apply.js';
import type { Family, GroupState, HistogramFamily, ScalarFamily } from '../../src/backends/pushgateway/model.js';
import { FAMILIES } from '../../src/core/families.js';
import type { CommitNode } from '../../src/core/lead-time.js';
import type { DeploymentRecord, GroupRecord } from '../../src/core/record.js';

const base: DeploymentRecord = {
  kind: 'deployment',
  id: 'r1',
  status: 'success',
  finishedAt: 1_000,
  version: '1.0',
  commit: 'abc',
  labels: {},
};

/** What the gateway would hold after pushing these families on top of the state (POST semantics). */
function pushed(state: GroupState, families: Family[]): GroupState {
  const next = new Map(state);
  for (const family of families) next.set(family.name, family);
  return next;
}

function history_(records: Partial<DeploymentRecord>[]): GroupState {
  let state: GroupState = new Map();
  records.forEach((r, i) => {
    state = pushed(state, applyRecord(state, { ...base, id: `r${i}`, ...r }, 100_000 + i).families);
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
      [1, 0],
      [5, 1],
      [10, 1],
      [30, 1],
      [60, 2],
      [120, 2],
      [300, 2],
      [600, 2],
      [900, 2],
      [1800, 2],
      [3600, 2],
      [7200, 3],
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
    expect(scalar(state, FAMILIES.info.name)).toEqual([
      { labels: { version: '3.0', commit: 'def', status: 'cancelled' }, value: 1 },
    ]);
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

  it('keeps the streak by finish time when a kept backlog arrives after a newer record', () => {
    // Applied in this order: a newer failure first, then the older successes sent from the outbox.
    const late = history_([
      { status: 'success', finishedAt: 50 },
      { status: 'failure', finishedAt: 500 },
      { status: 'success', finishedAt: 100 },
      { status: 'failure', finishedAt: 300 },
      { status: 'success', finishedAt: 200 },
    ]);
    // The failing streak began at 300 (the first failure after the last success, at 200).
    expect(scalar(late, FAMILIES.failingSince.name)).toEqual([{ labels: {}, value: 300 }]);
    expect(histogram(late, FAMILIES.timeToRestore.name)).toBeUndefined();
    const restored = pushed(
      late,
      applyRecord(late, { ...base, id: 'fix', status: 'success', finishedAt: 900 }, 200_000).families,
    );
    const [restore] = histogram(restored, FAMILIES.timeToRestore.name)!;
    expect(restore!.count).toBe(1);
    expect(restore!.sum).toBe(600);
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
    const wrongType: GroupState = new Map([
      [FAMILIES.deployments.name, { name: FAMILIES.deployments.name, help: '', type: 'gauge', series: [] }],
    ]);
    expect(() => applyRecord(wrongType, base, 1)).toThrow(GroupConflictError);
    expect(() => applyRecord(wrongType, base, 1)).toThrow(
      /deployctl_deployments_total as a gauge, but deployctl pushes it as a counter/,
    );

    const otherLabels: GroupState = new Map([
      [
        FAMILIES.deployments.name,
        {
          name: FAMILIES.deployments.name,
          help: '',
          type: 'counter',
          series: [{ labels: { result: 'ok' }, value: 3 }],
        },
      ],
    ]);
    expect(() => applyRecord(otherLabels, base, 1)).toThrow(
      /deployctl_deployments_total with the labels \{result\}, but deployctl's series all have \{status\}/,
    );

    const otherBuckets: GroupState = new Map([
      [
        FAMILIES.deploymentDuration.name,
        {
          name: FAMILIES.deploymentDuration.name,
          help: '',
          type: 'histogram',
          series: [{ labels: { status: 'success' }, buckets: [{ le: 1, count: 0 }], sum: 0, count: 0 }],
        },
      ],
    ]);
    expect(() => applyRecord(otherBuckets, { ...base, durationSeconds: 1 }, 1)).toThrow(
      /deployctl_deployment_duration_seconds with the buckets 1/,
    );
  });

  it('clears the last duration when the last deployment has none, and starts failing-since at 0', () => {
    const state = history_([{ durationSeconds: 30 }, {}]);
    expect(scalar(state, FAMILIES.lastDuration.name)![0]!.value).toBeNaN();
    expect(scalar(state, FAMILIES.failingSince.name)).toEqual([{ labels: {}, value: 0 }]);
  });

  it('does not freeze the last deployment on a time from a clock that runs ahead', () => {
    let state: GroupState = new Map();
    const applied = applyRecord(state, { ...base, finishedAt: 10_000 }, 1_000);
    state = pushed(state, applied.families);
    expect(applied.notices.join()).toMatch(/after now/);
    expect(state.has(FAMILIES.lastDeployment.name)).toBe(false);
    expect(scalar(state, FAMILIES.deployments.name)![0]!.value).toBe(1);
  });
});

describe('record sequence', () => {
  it("ranks remembered identities by the group's own sequence, whatever the finish times and clocks", () => {
    let state: GroupState = new Map();
    // A machine a day ahead records 30 deployments, then one with a correct clock records one.
    for (let i = 0; i < 30; i++)
      state = pushed(
        state,
        applyRecord(state, { ...base, id: `ahead${i}`, finishedAt: 90_000 + i }, 90_000 + i).families,
      );
    const applied = applyRecord(state, { ...base, id: 'late', finishedAt: 1_000 }, 1_000);
    state = pushed(state, applied.families);
    const ids = scalar(state, FAMILIES.appliedRecords.name)!;
    expect(ids[0]).toEqual({ labels: { record_id: 'late' }, value: 31 });
    expect(scalar(state, FAMILIES.recordsApplied.name)).toEqual([{ labels: {}, value: 31 }]);
    expect(applyRecord(state, { ...base, id: 'late', finishedAt: 1_000 }, 1_000).duplicate).toBe(true);
  });

  it('numbers the identities an older deployctl ranked by timestamps, in their order', () => {
    const old: GroupState = new Map([
      [
        FAMILIES.appliedRecords.name,
        {
          name: FAMILIES.appliedRecords.name,
          help: '',
          type: 'gauge',
          series: [
            { labels: { record_id: 'b' }, value: 1_700_000_200 },
            { labels: { record_id: 'a' }, value: 1_700_000_100 },
          ],
        },
      ],
    ]);
    const state = pushed(old, applyRecord(old, { ...base, id: 'c' }, 1_800_000_000).families);
    expect(scalar(state, FAMILIES.appliedRecords.name)).toEqual([
      { labels: { record_id: 'c' }, value: 3 },
      { labels: { record_id: 'b' }, value: 2 },
      { labels: { record_id: 'a' }, value: 1 },
    ]);
  });
});

describe('start and finish', () => {
  const start = (id: string, startedAt: number): GroupRecord => ({ kind: 'start', id, startedAt });
  const finish = (id: string, finishedAt: number): GroupRecord => ({
    ...base,
    id,
    finishedAt,
    durationFromGatewayStart: true,
    closesStart: true,
  });

  it('counts one finish per start; a second finish is not counted', () => {
    let state: GroupState = new Map();
    const apply = (record: GroupRecord) => {
      const applied = applyRecord(state, record, 100_000);
      state = pushed(state, applied.families);
      return applied;
    };
    apply(start('s1', 1_000));
    expect(apply(finish('f1', 1_100)).durationSeconds).toBe(100);
    const second = apply(finish('f2', 1_200));
    expect(second.duplicate).toBe(true);
    expect(second.notices.join()).toMatch(/nothing is in progress/);
    expect(scalar(state, FAMILIES.deployments.name)![0]).toEqual({ labels: { status: 'success' }, value: 1 });
  });

  it('counts a replaced start as cancelled', () => {
    let state: GroupState = new Map();
    for (const record of [start('s1', 1_000), start('s2', 2_000)]) {
      const applied = applyRecord(state, record, 100_000);
      state = pushed(state, applied.families);
      if (record.id === 's2')
        expect(applied.notices.join()).toMatch(
          /started at 1970-01-01T00:16:40Z was still in progress: it is counted as cancelled/,
        );
    }
    expect(scalar(state, FAMILIES.deployments.name)!.find((s) => s.labels.status === 'cancelled')!.value).toBe(1);
    expect(scalar(state, FAMILIES.startedAt.name)).toEqual([{ labels: {}, value: 2_000 }]);
  });
});

/**
 * A scripted history with merges, a branch deployed before its merge, rollbacks, a roll-forward,
 * a redeploy and one commit failing then succeeding; the expected values come from the script.
 */
describe('lead time and rollbacks over a scripted history', () => {
  const H = 3_600;
  const nodes = new Map<string, CommitNode>();
  const commit = (sha: string, hour: number, ...parents: string[]) => nodes.set(sha, { sha, time: hour * H, parents });
  const historyOf = (sha: string): CommitNode[] => {
    const seen = new Set<string>();
    const stack = [sha];
    while (stack.length) {
      const s = stack.pop()!;
      if (seen.has(s)) continue;
      seen.add(s);
      stack.push(...nodes.get(s)!.parents);
    }
    return [...seen].map((s) => nodes.get(s)!).sort((a, b) => b.time - a.time);
  };
  commit('c1', 0);
  commit('c2', 2, 'c1');
  commit('c3', 3, 'c2');
  commit('f1', 5, 'c3');
  commit('c4', 7, 'c3');
  commit('m1', 9, 'c4', 'f1');
  commit('c5', 11, 'm1');
  commit('c6', 12, 'c5');
  commit('c7', 16, 'c6');

  // [commit, status, finish hour, expected lead times in hours, rollback]
  const script: [string, 'success' | 'failure', number, number[], boolean][] = [
    ['c1', 'success', 1, [1], false], // first deployment: c1 alone
    ['c3', 'success', 4, [2, 1], false], // brings c2 and c3
    ['f1', 'success', 6, [1], false], // a branch deployed before its merge
    ['c4', 'success', 8, [1], false], // main, without f1: not a rollback
    ['m1', 'success', 10, [1], false], // the merge brings m1 alone (f1, c4 deployed)
    ['c6', 'failure', 13, [], false],
    ['c6', 'success', 14, [3, 2], false], // the same commit succeeds: c5 and c6
    ['m1', 'success', 15, [], true], // rollback
    ['c7', 'success', 17, [1], false], // roll-forward: c7 alone, c5 and c6 were deployed
    ['c7', 'success', 18, [], false], // redeploy
    ['c6', 'success', 19, [], true], // rollback to an ancestor of c7
    ['f1', 'success', 20, [], true], // f1 is an ancestor of c6 (through m1)
  ];

  it('observes each commit once and counts every rollback', () => {
    let state: GroupState = new Map();
    script.forEach(([sha, status, hour, expected, rollback], i) => {
      const record: DeploymentRecord = {
        ...base,
        id: `d${i}`,
        commit: sha,
        status,
        finishedAt: hour * H,
        history: historyOf(sha),
      };
      const applied = applyRecord(state, record, 100 * H);
      state = pushed(state, applied.families);
      expect([...(applied.leadTimes ?? [])].sort(), `${i} ${sha}`).toEqual(expected.map((h) => h * H).sort());
      expect(applied.rollback ?? false, `${i} ${sha}`).toBe(rollback);
    });
    const all = script.flatMap(([, , , expected]) => expected);
    const [lead] = histogram(state, FAMILIES.leadTime.name)!;
    expect(lead!.count).toBe(all.length);
    expect(lead!.sum).toBe(all.reduce((a, b) => a + b, 0) * H);
    expect(scalar(state, FAMILIES.rollbacks.name)).toEqual([{ labels: {}, value: script.filter((s) => s[4]).length }]);
    expect(scalar(state, FAMILIES.deployedCommits.name)!.length).toBeLessThanOrEqual(REMEMBERED_COMMITS);
  });
});

describe('deployed commits', () => {
  const node = (sha: string, time: number, ...parents: string[]): CommitNode => ({ sha, time, parents });
  const history = [node('c3', 300, 'c2'), node('c2', 200, 'c1'), node('c1', 100)];

  it('does not make a late success (an older finish, from the outbox) the running commit', () => {
    let state: GroupState = new Map();
    const apply = (record: Partial<DeploymentRecord>) => {
      const applied = applyRecord(state, { ...base, ...record }, 100_000);
      state = pushed(state, applied.families);
      return applied;
    };
    apply({ id: 'a', commit: 'c1', history: history.slice(2), finishedAt: 1_000 });
    apply({ id: 'b', commit: 'c3', history, finishedAt: 3_000 });
    const late = apply({ id: 'c', commit: 'c2', history: history.slice(1), finishedAt: 2_000 });
    expect(late.rollback).toBeUndefined();
    expect(late.leadTimes).toBeUndefined(); // c2 came with c3
    // c3 still runs: deploying c2 now is a rollback.
    expect(apply({ id: 'd', commit: 'c2', history: history.slice(1), finishedAt: 4_000 }).rollback).toBe(true);
  });

  it(`remembers at most ${REMEMBERED_COMMITS} commits, the most recent first`, () => {
    const long = Array.from({ length: 250 }, (_, i) => node(`k${i}`, i + 1, ...(i > 0 ? [`k${i - 1}`] : [])));
    let state: GroupState = new Map();
    for (const [i, tip] of [10, 249].entries()) {
      const applied = applyRecord(
        state,
        { ...base, id: `r${i}`, commit: `k${tip}`, history: long.slice(0, tip + 1).reverse(), finishedAt: 1_000 + i },
        100_000,
      );
      state = pushed(state, applied.families);
    }
    const remembered = scalar(state, FAMILIES.deployedCommits.name)!;
    expect(remembered).toHaveLength(REMEMBERED_COMMITS);
    expect(remembered[0]!.labels.commit).toBe('k249');
  });
});
