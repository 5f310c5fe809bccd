import { describe, expect, it } from 'vitest';
import { applyRecord } from '../../src/backends/pushgateway/apply.js';
import { failureMemory } from '../../src/backends/pushgateway/failed-changes.js';
import type { GroupState, HistogramFamily, ScalarFamily } from '../../src/backends/pushgateway/model.js';
import { historyTimeMs, LEDGER, ledgerFor, pastEvents } from '../../src/backends/remote-write/ledger.js';
import type { TimeSeries } from '../../src/backends/remote-write/protobuf.js';
import {
  applyFailureEvent,
  emptyMemory,
  type FailedChangeReason,
  type FailureEvent,
  type FailureMemory,
  REMEMBERED_DEPLOYMENTS,
} from '../../src/core/failed-change.js';
import { FAMILIES } from '../../src/core/families.js';
import type { CommitNode } from '../../src/core/lead-time.js';
import type { GroupRecord } from '../../src/core/record.js';

const T0 = 1_767_225_600;
const minute = 60;
const hour = 3600;
const grouping = { job: 'deployctl', service: 'api', environment: 'prod' };

function run(events: FailureEvent[], memory: FailureMemory = emptyMemory()) {
  const outcomes = [];
  for (const event of events) {
    const outcome = applyFailureEvent(memory, event);
    outcomes.push(outcome);
    memory = outcome.memory;
  }
  return {
    memory,
    failed: outcomes.flatMap((o) => o.failedChanges.map((c) => `${c.deployment}:${c.reason}`)),
    recoveries: outcomes.flatMap((o) => o.recoveries.map((r) => `${r.deployment}:${r.seconds}`)),
    rework: outcomes.flatMap((o) => o.rework.map((r) => r.deployment)),
  };
}

const dep = (key: string, at: number, status: 'success' | 'failure' = 'success', rollback = false): FailureEvent => ({
  kind: 'deployment',
  key,
  at,
  status,
  rollback,
});
const open = (incident: string, at: number): FailureEvent => ({ kind: 'incident', incident, action: 'open', at });
const resolve = (incident: string, at: number): FailureEvent => ({ kind: 'incident', incident, action: 'resolve', at });

describe('the failed-change model', () => {
  it('a failed deploy is a failed change, recovered by the next success, which is rework', () => {
    const r = run([
      dep('a', T0),
      dep('b', T0 + hour, 'failure'),
      dep('c', T0 + 2 * hour, 'failure'),
      dep('d', T0 + 3 * hour),
    ]);
    expect(r.failed).toEqual(['b:failure', 'c:failure']);
    expect(r.recoveries).toEqual([`b:${2 * hour}`, `c:${hour}`]);
    expect(r.rework).toEqual(['c', 'd']);
  });

  it('a rollback makes the success it replaced a failed change, recovered by the rollback itself', () => {
    const r = run([dep('a', T0), dep('b', T0 + hour), dep('a2', T0 + 3 * hour, 'success', true)]);
    expect(r.failed).toEqual(['b:rollback']);
    expect(r.recoveries).toEqual([`b:${2 * hour}`]);
    expect(r.rework).toEqual(['a2']);
  });

  it('a failed verification judges the latest deployment finished before it began; known at its end', () => {
    const r = run([
      dep('a', T0),
      { kind: 'verification', result: 'fail', startedAt: T0 + minute, finishedAt: T0 + 11 * minute },
      { kind: 'verification', result: 'fail', startedAt: T0 + minute, finishedAt: T0 + 12 * minute },
      dep('b', T0 + hour),
    ]);
    expect(r.failed).toEqual(['a:verification']);
    expect(r.recoveries).toEqual([`a:${49 * minute}`]);
    expect(r.rework).toEqual(['b']);
  });

  it('an incident attributes to the latest success within the window and recovers at its resolution', () => {
    const r = run([dep('a', T0), open('i', T0 + hour), dep('fix', T0 + 2 * hour), resolve('i', T0 + 3 * hour)]);
    expect(r.failed).toEqual(['a:incident']);
    expect(r.recoveries).toEqual([`a:${2 * hour}`]);
    expect(r.rework).toEqual(['fix']);
    expect(r.memory.open).toEqual([]);
  });

  it('counts a deployment once whatever the reasons; the first reason names it', () => {
    const r = run([
      dep('a', T0),
      open('i', T0 + minute),
      { kind: 'verification', result: 'fail', startedAt: T0 + 2 * minute, finishedAt: T0 + 3 * minute },
      open('j', T0 + 4 * minute),
      dep('back', T0 + hour, 'success', true),
      resolve('i', T0 + 2 * hour),
    ]);
    expect(r.failed).toEqual(['a:incident']);
    expect(r.recoveries).toEqual([`a:${2 * hour - minute}`]);
  });

  it('replays and stale opens change nothing; a later open of a resolved id is a new incident', () => {
    const r = run([
      dep('a', T0),
      open('i', T0 + hour),
      open('i', T0 + hour),
      resolve('i', T0 + 2 * hour),
      resolve('i', T0 + 2 * hour),
      open('i', T0 + hour),
      resolve('never-opened', T0 + 2 * hour),
    ]);
    expect(r.failed).toEqual(['a:incident']);
    expect(r.recoveries).toEqual([`a:${hour}`]);
    const again = applyFailureEvent(r.memory, open('i', T0 + 3 * hour));
    expect(again.incident).toBe('open');
    expect(again.failedChanges).toEqual([]); // a is a failed change already
  });

  it('an incident long after the last success, or with no deployment, is open but attributed to nothing', () => {
    const none = applyFailureEvent(emptyMemory(), open('i', T0));
    expect(none).toMatchObject({ incident: 'open', unattributed: true, failedChanges: [] });
    const late = run([dep('a', T0), open('i', T0 + 25 * hour), resolve('i', T0 + 26 * hour)]);
    expect(late.failed).toEqual([]);
    expect(late.recoveries).toEqual([]);
  });

  it('decides by times: an incident sent after a newer deployment attributes to the one latest at its start', () => {
    const r = run([dep('a', T0), dep('b', T0 + 2 * hour), open('i', T0 + hour), resolve('i', T0 + 3 * hour)]);
    expect(r.failed).toEqual(['a:incident']);
    expect(r.rework).toEqual(['b']);
    expect(r.recoveries).toEqual([`a:${2 * hour}`]);
  });

  it('a failure sent late is recovered by the success already known after it', () => {
    const r = run([dep('a', T0), dep('c', T0 + 2 * hour), dep('b', T0 + hour, 'failure')]);
    expect(r.failed).toEqual(['b:failure']);
    expect(r.recoveries).toEqual([`b:${hour}`]);
    expect(r.rework).toEqual(['c']);
  });

  it('remembers at most the last deployments', () => {
    const events = Array.from({ length: REMEMBERED_DEPLOYMENTS + 5 }, (_, i) => dep(`d${i}`, T0 + i * hour));
    expect(run(events).memory.deployments).toHaveLength(REMEMBERED_DEPLOYMENTS);
  });
});

// ---------------------------------------------------------------------------------------------
// One scripted history per group, through both backends' pure models, against an oracle.

type Step =
  | { deploy: string; status: 'success' | 'failure'; at: number }
  | { verify: 'pass' | 'fail'; startedAt: number; finishedAt: number }
  | { incident: string; action: 'open' | 'resolve'; at: number; window?: number };

/** A linear history c1 ← c2 ← … : deploying an older commit than the running one is a rollback. */
const commitTime = (c: string) => T0 - 10 * hour + Number(c.slice(1)) * minute;
const historyOf = (c: string): CommitNode[] =>
  Array.from({ length: Number(c.slice(1)) }, (_, i) => {
    const n = Number(c.slice(1)) - i;
    return { sha: `c${n}`, parents: n > 1 ? [`c${n - 1}`] : [], time: commitTime(`c${n}`) };
  });

function toRecords(steps: Step[]): GroupRecord[] {
  return steps.map((s, i): GroupRecord => {
    const id = `r${i}`;
    if ('deploy' in s)
      return {
        kind: 'deployment',
        id,
        status: s.status,
        finishedAt: s.at,
        version: s.deploy,
        commit: s.deploy,
        labels: {},
        history: historyOf(s.deploy),
      };
    if ('verify' in s)
      return { kind: 'verification', id, result: s.verify, startedAt: s.startedAt, finishedAt: s.finishedAt };
    return {
      kind: 'incident',
      id,
      incident: s.incident,
      action: s.action,
      at: s.at,
      ...(s.window !== undefined && { attributionWindowSeconds: s.window }),
    };
  });
}

interface Figures {
  failed: Record<FailedChangeReason, number>;
  recoveries: number[];
  rework: number;
}

/**
 * The oracle, from the SPEC's definitions over the whole script (by times, whatever order the
 * records were sent in).
 */
function oracle(steps: Step[]): Figures {
  const deploys = steps
    .filter((s): s is Extract<Step, { deploy: string }> => 'deploy' in s)
    .sort((a, b) => a.at - b.at);
  // Incidents: each id's first open (replays and stale opens are the same incident), and its resolution.
  const incidents = new Map<string, { openedAt: number; window: number; resolvedAt?: number }>();
  for (const s of [...steps].sort((a, b) => ('at' in a ? a.at : 0) - ('at' in b ? b.at : 0))) {
    if (!('incident' in s)) continue;
    const known = incidents.get(s.incident);
    if (s.action === 'open' && !known) incidents.set(s.incident, { openedAt: s.at, window: s.window ?? 24 * hour });
    if (s.action === 'resolve' && known && known.resolvedAt === undefined) known.resolvedAt = s.at;
  }
  const successes = deploys.filter((d) => d.status === 'success');
  const rollbacks = new Set<number>();
  let running: number | undefined;
  for (const d of successes) {
    const n = Number(d.deploy.slice(1));
    if (running !== undefined && n < running) rollbacks.add(d.at);
    running = n;
  }
  const nextSuccess = (from: number) => successes.find((s) => s.at >= from)?.at;
  const candidates = deploys.map((d) => {
    const reasons: { reason: FailedChangeReason; when: number; knownAt: number; recoveredAt?: number }[] = [];
    if (d.status === 'failure')
      reasons.push({ reason: 'failure', when: d.at, knownAt: d.at, recoveredAt: nextSuccess(d.at) });
    const after = successes.find((s) => s.at > d.at);
    if (d.status === 'success' && after && rollbacks.has(after.at))
      reasons.push({ reason: 'rollback', when: after.at, knownAt: d.at, recoveredAt: after.at });
    for (const s of steps) {
      if ('verify' in s && s.verify === 'fail' && deploys.filter((x) => x.at <= s.startedAt).at(-1) === d)
        reasons.push({
          reason: 'verification',
          when: s.finishedAt,
          knownAt: s.finishedAt,
          recoveredAt: nextSuccess(s.finishedAt),
        });
    }
    for (const i of incidents.values()) {
      const latest = successes.filter((x) => x.at <= i.openedAt).at(-1);
      if (latest === d && i.openedAt - d.at <= i.window)
        reasons.push({
          reason: 'incident',
          when: i.openedAt,
          knownAt: i.openedAt,
          ...(i.resolvedAt !== undefined && { recoveredAt: i.resolvedAt }),
        });
    }
    return { d, first: reasons.sort((a, b) => a.when - b.when)[0] };
  });
  const failed = { failure: 0, rollback: 0, verification: 0, incident: 0 };
  const recoveries: number[] = [];
  for (const { first } of candidates) {
    if (!first) continue;
    failed[first.reason] += 1;
    if (first.recoveredAt !== undefined) recoveries.push(first.recoveredAt - first.knownAt);
  }
  const rework = deploys.filter(
    (x) =>
      rollbacks.has(x.at) ||
      candidates.some(
        ({ d, first }) =>
          first && d !== x && first.knownAt <= x.at && (first.recoveredAt === undefined || first.recoveredAt >= x.at),
      ),
  ).length;
  return { failed, recoveries: recoveries.sort((a, b) => a - b), rework };
}

const NOW = T0 + 30 * 24 * hour;

function onPushgateway(records: GroupRecord[]): Figures {
  let state: GroupState = new Map();
  const recoveries: number[] = [];
  for (const record of records) {
    const applied = applyRecord(state, record, NOW);
    recoveries.push(...(applied.recoverySeconds ?? []));
    state = new Map([...state, ...applied.families.map((f) => [f.name, f] as const)]);
  }
  const counters = state.get(FAMILIES.failedChanges.name) as ScalarFamily;
  const failed = Object.fromEntries(counters.series.map((s) => [s.labels.reason, s.value])) as Figures['failed'];
  const histogram = state.get(FAMILIES.failedRecovery.name) as HistogramFamily;
  expect(histogram.series[0]!.count).toBe(recoveries.length);
  expect(histogram.series[0]!.sum).toBe(recoveries.reduce((a, b) => a + b, 0));
  const rework = (state.get(FAMILIES.rework.name) as ScalarFamily).series[0]!.value;
  // The memory written back knows each failed change (every history here has under 20 deployments).
  expect(failureMemory(state).deployments.filter((d) => d.reason).length).toBe(
    Object.values(failed).reduce((a, b) => a + b, 0),
  );
  return { failed, recoveries: recoveries.sort((a, b) => a - b), rework };
}

const asRaw = (series: TimeSeries[]) =>
  series.map((s) => ({
    metric: Object.fromEntries(s.labels.map((l) => [l.name, l.value])),
    values: s.samples.map((x) => [x.timestampMs / 1000, String(x.value)] as [number, string]),
  }));
const nameOf = (s: TimeSeries) => s.labels.find((l) => l.name === '__name__')!.value;
const keyOf = (s: TimeSeries) => JSON.stringify([s.labels, s.samples[0]!.timestampMs]);

/** Remote-write: each record's samples from what the store holds up to the time it reads at; the store keeps one of identical samples. */
function onRemoteWrite(records: GroupRecord[]): Figures {
  const store = new Map<string, TimeSeries>();
  for (const record of records) {
    const until = historyTimeMs(record);
    const visible = [...store.values()].filter((s) => s.samples[0]!.timestampMs <= until);
    const ledger = ledgerFor(grouping, record, pastEvents(asRaw(visible)));
    for (const s of ledger.series) {
      const existing = store.get(keyOf(s));
      if (existing) expect(existing.samples[0]!.value).toBe(s.samples[0]!.value);
      store.set(keyOf(s), s);
    }
  }
  const all = [...store.values()];
  const failed = { failure: 0, rollback: 0, verification: 0, incident: 0 };
  for (const s of all.filter((x) => nameOf(x) === LEDGER.failedChange))
    failed[s.labels.find((l) => l.name === 'reason')!.value as FailedChangeReason] += 1;
  return {
    failed,
    recoveries: all
      .filter((x) => nameOf(x) === LEDGER.failedRecovery)
      .map((x) => x.samples[0]!.value)
      .sort((a, b) => a - b),
    rework: all.filter((x) => nameOf(x) === LEDGER.rework).length,
  };
}

const histories: Record<string, { steps: Step[]; expected: Figures }> = {
  'a failed deploy, then a fix': {
    steps: [
      { deploy: 'c1', status: 'success', at: T0 },
      { deploy: 'c2', status: 'failure', at: T0 + hour },
      { deploy: 'c2', status: 'success', at: T0 + 2 * hour },
    ],
    expected: { failed: { failure: 1, rollback: 0, verification: 0, incident: 0 }, recoveries: [hour], rework: 1 },
  },
  'a verification fails, then a fix that verifies': {
    steps: [
      { deploy: 'c1', status: 'success', at: T0 },
      { verify: 'fail', startedAt: T0 + minute, finishedAt: T0 + 15 * minute },
      { deploy: 'c2', status: 'success', at: T0 + hour },
      { verify: 'pass', startedAt: T0 + hour + minute, finishedAt: T0 + hour + 15 * minute },
    ],
    expected: {
      failed: { failure: 0, rollback: 0, verification: 1, incident: 0 },
      recoveries: [45 * minute],
      rework: 1,
    },
  },
  'an incident opened and resolved with no deploy': {
    steps: [
      { incident: 'i1', action: 'open', at: T0 },
      { incident: 'i1', action: 'resolve', at: T0 + hour },
    ],
    expected: { failed: { failure: 0, rollback: 0, verification: 0, incident: 0 }, recoveries: [], rework: 0 },
  },
  'an incident with a fix deployed while it is open': {
    steps: [
      { deploy: 'c1', status: 'success', at: T0 },
      { incident: 'i1', action: 'open', at: T0 + 30 * minute },
      { deploy: 'c2', status: 'success', at: T0 + hour },
      { incident: 'i1', action: 'resolve', at: T0 + hour + 10 * minute },
    ],
    expected: {
      failed: { failure: 0, rollback: 0, verification: 0, incident: 1 },
      recoveries: [40 * minute],
      rework: 1,
    },
  },
  'a rollback': {
    steps: [
      { deploy: 'c1', status: 'success', at: T0 },
      { deploy: 'c2', status: 'success', at: T0 + hour },
      { deploy: 'c1', status: 'success', at: T0 + 2 * hour },
    ],
    expected: { failed: { failure: 0, rollback: 1, verification: 0, incident: 0 }, recoveries: [hour], rework: 1 },
  },
  'an incident long after the last deploy': {
    steps: [
      { deploy: 'c1', status: 'success', at: T0 },
      { incident: 'i1', action: 'open', at: T0 + 30 * hour },
      { incident: 'i1', action: 'resolve', at: T0 + 31 * hour },
    ],
    expected: { failed: { failure: 0, rollback: 0, verification: 0, incident: 0 }, recoveries: [], rework: 0 },
  },
  'replayed incident records': {
    steps: [
      { deploy: 'c1', status: 'success', at: T0 },
      { incident: 'i1', action: 'open', at: T0 + hour },
      { incident: 'i1', action: 'open', at: T0 + hour },
      { incident: 'i1', action: 'resolve', at: T0 + 2 * hour },
      { incident: 'i1', action: 'resolve', at: T0 + 2 * hour },
      { incident: 'i1', action: 'open', at: T0 + hour },
    ],
    expected: { failed: { failure: 0, rollback: 0, verification: 0, incident: 1 }, recoveries: [hour], rework: 0 },
  },
  'a failed deploy sent late, after its fix': {
    steps: [
      { deploy: 'c1', status: 'success', at: T0 },
      { deploy: 'c2', status: 'success', at: T0 + 2 * hour },
      { deploy: 'c2', status: 'failure', at: T0 + hour },
    ],
    expected: { failed: { failure: 1, rollback: 0, verification: 0, incident: 0 }, recoveries: [hour], rework: 1 },
  },
  'an incident 38 h after a deploy, opened with a 48 h attribution window': {
    steps: [
      { deploy: 'c1', status: 'success', at: T0 },
      { incident: 'i1', action: 'open', at: T0 + 38 * hour, window: 48 * hour },
      { incident: 'i1', action: 'resolve', at: T0 + 39 * hour },
    ],
    expected: {
      failed: { failure: 0, rollback: 0, verification: 0, incident: 1 },
      recoveries: [hour],
      rework: 0,
    },
  },
  'an incident 5 h after a deploy, opened with a 4 h attribution window': {
    steps: [
      { deploy: 'c1', status: 'success', at: T0 },
      { incident: 'i1', action: 'open', at: T0 + 5 * hour, window: 4 * hour },
      { incident: 'i1', action: 'resolve', at: T0 + 6 * hour },
    ],
    expected: {
      failed: { failure: 0, rollback: 0, verification: 0, incident: 0 },
      recoveries: [],
      rework: 0,
    },
  },
  'an incident with a 48 h window known before the deployment it is attributed to (sent late)': {
    steps: [
      { incident: 'i1', action: 'open', at: T0 + 30 * hour, window: 48 * hour },
      { deploy: 'c1', status: 'success', at: T0 },
      { incident: 'i1', action: 'resolve', at: T0 + 31 * hour },
    ],
    expected: {
      failed: { failure: 0, rollback: 0, verification: 0, incident: 1 },
      recoveries: [hour],
      rework: 0,
    },
  },
  'a kept incident record applied after a newer deployment': {
    steps: [
      { deploy: 'c1', status: 'success', at: T0 },
      { deploy: 'c2', status: 'success', at: T0 + 2 * hour },
      { incident: 'i1', action: 'open', at: T0 + hour },
      { incident: 'i1', action: 'resolve', at: T0 + 3 * hour },
    ],
    expected: {
      failed: { failure: 0, rollback: 0, verification: 0, incident: 1 },
      recoveries: [2 * hour],
      rework: 1,
    },
  },
};

describe('failed changes, recovery and rework: the same on both backends and as the definitions say', () => {
  for (const [name, { steps, expected }] of Object.entries(histories)) {
    it(name, () => {
      expect(oracle(steps)).toEqual(expected);
      const records = toRecords(steps);
      expect(onPushgateway(records)).toEqual(expected);
      expect(onRemoteWrite(records)).toEqual(expected);
    });
  }

  it('the whole script in one group, too', () => {
    // Every history, one after another a day apart, in one group.
    const steps = Object.values(histories).flatMap(({ steps }, i) =>
      steps.map((s): Step => {
        const shift = i * 2 * 24 * hour;
        if ('deploy' in s) return { ...s, deploy: `c${Number(s.deploy.slice(1)) + 2 * i}`, at: s.at + shift };
        if ('verify' in s) return { ...s, startedAt: s.startedAt + shift, finishedAt: s.finishedAt + shift };
        return { ...s, incident: `${s.incident}-${i}`, at: s.at + shift };
      }),
    );
    const expected = oracle(steps);
    const records = toRecords(steps);
    expect(onPushgateway(records)).toEqual(expected);
    expect(onRemoteWrite(records)).toEqual(expected);
  });
});

describe('what a gateway group shows of verifications and incidents', () => {
  it('counts verdicts and incidents, the latest of each, and the incidents open now', () => {
    let state: GroupState = new Map();
    const apply = (record: GroupRecord) => {
      const applied = applyRecord(state, record, NOW);
      state = new Map([...state, ...applied.families.map((f) => [f.name, f] as const)]);
      return applied;
    };
    const value = (name: string, labels: Record<string, string> = {}) =>
      (state.get(name) as ScalarFamily | undefined)?.series.find(
        (s) => JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort()),
      )?.value;
    apply({ kind: 'deployment', id: 'd', status: 'success', finishedAt: T0, version: 'v', commit: '', labels: {} });
    expect(value(FAMILIES.verifications.name, { result: 'fail' })).toBe(0);
    expect(value(FAMILIES.openIncidents.name)).toBe(0);
    apply({ kind: 'verification', id: 'v1', result: 'pass', startedAt: T0 + 60, finishedAt: T0 + 120 });
    apply({ kind: 'verification', id: 'v0', result: 'fail', startedAt: T0 + 10, finishedAt: T0 + 50 });
    expect(value(FAMILIES.verifications.name, { result: 'pass' })).toBe(1);
    expect(value(FAMILIES.verifications.name, { result: 'fail' })).toBe(1);
    // The latest verdict by its finish, whatever order they came in.
    expect(value(FAMILIES.lastVerification.name, { result: 'pass' })).toBe(T0 + 120);
    expect(value(FAMILIES.failedChanges.name, { reason: 'verification' })).toBe(1);
    apply({ kind: 'incident', id: 'i1', incident: 'a', action: 'open', at: T0 + hour });
    apply({ kind: 'incident', id: 'i2', incident: 'b', action: 'open', at: T0 + 2 * hour });
    const replay = apply({ kind: 'incident', id: 'i3', incident: 'a', action: 'open', at: T0 + hour });
    expect(replay.notices.join()).toMatch(/nothing changed/);
    apply({ kind: 'incident', id: 'i4', incident: 'a', action: 'resolve', at: T0 + 3 * hour });
    expect(value(FAMILIES.incidents.name)).toBe(2);
    expect(value(FAMILIES.openIncidents.name)).toBe(1);
    expect(value(FAMILIES.lastIncident.name)).toBe(T0 + 2 * hour);
    // The deployment was a failed change already (its verification): counted once.
    expect((state.get(FAMILIES.failedChanges.name) as ScalarFamily).series.reduce((n, s) => n + s.value, 0)).toBe(1);
    expect(failureMemory(state).open.map((i) => i.incident)).toEqual(['b']);
  });
});
