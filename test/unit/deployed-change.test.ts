import { describe, expect, it } from 'vitest';
import { applyRecord } from '../../src/backends/pushgateway/apply.js';
import type { GroupState } from '../../src/backends/pushgateway/model.js';
import { LEDGER, ledgerFor, type PastEvent, pastEvents } from '../../src/backends/remote-write/ledger.js';
import type { TimeSeries } from '../../src/backends/remote-write/protobuf.js';
import { FAMILIES } from '../../src/core/families.js';
import type { CommitNode } from '../../src/core/lead-time.js';
import type { DeploymentRecord } from '../../src/core/record.js';

/** A commit graph: each commit's parents and time, oldest first. */
type Graph = Record<string, { parents: string[]; time: number }>;

const T0 = 1_767_225_600;
const grouping = { job: 'deployctl', service: 'api', environment: 'prod' };

/** Every ancestor of `sha`, itself included, by walking the whole graph. */
function ancestry(graph: Graph, sha: string): Set<string> {
  const seen = new Set<string>();
  const stack = [sha];
  while (stack.length) {
    const next = stack.pop()!;
    if (seen.has(next)) continue;
    seen.add(next);
    stack.push(...graph[next]!.parents);
  }
  return seen;
}

/** The history a record carries: the commit and its ancestors, newest first, as git log gives them. */
function historyOf(graph: Graph, sha: string): CommitNode[] {
  return [...ancestry(graph, sha)]
    .map((c) => ({ sha: c, parents: graph[c]!.parents, time: graph[c]!.time }))
    .sort((a, b) => b.time - a.time || (a.sha === sha ? -1 : 1));
}

interface Expected {
  leadTimes: number[];
  rollbacks: number;
}

/**
 * The oracle, from the definitions alone: a success of a proper ancestor of the running commit is
 * a rollback; any other success brings the commits reachable from it and from no commit deployed
 * successfully before (the first deployment: the deployed commit alone).
 */
function oracle(graph: Graph, deploys: { commit: string; status: 'success' | 'failure'; at: number }[]): Expected {
  const leadTimes: number[] = [];
  let rollbacks = 0;
  let running: string | undefined;
  const deployed = new Set<string>();
  for (const d of deploys) {
    if (d.status !== 'success') continue;
    if (running !== undefined && d.commit !== running && ancestry(graph, running).has(d.commit)) {
      rollbacks += 1;
    } else if (running === undefined) {
      leadTimes.push(d.at - graph[d.commit]!.time);
    } else {
      for (const c of ancestry(graph, d.commit)) if (!deployed.has(c)) leadTimes.push(d.at - graph[c]!.time);
    }
    for (const c of ancestry(graph, d.commit)) deployed.add(c);
    running = d.commit;
  }
  return { leadTimes: leadTimes.sort((a, b) => a - b), rollbacks };
}

function records(graph: Graph, deploys: { commit: string; status: 'success' | 'failure'; at: number }[]) {
  return deploys.map(
    (d, i): DeploymentRecord => ({
      kind: 'deployment',
      id: `r${i}`,
      status: d.status,
      finishedAt: d.at,
      version: d.commit,
      commit: d.commit,
      labels: {},
      history: historyOf(graph, d.commit),
    }),
  );
}

/** The Pushgateway's model: each record merged into the group the previous ones left. */
function onPushgateway(list: DeploymentRecord[]): Expected {
  let state: GroupState = new Map();
  const leadTimes: number[] = [];
  let rollbacks = 0;
  for (const record of list) {
    const applied = applyRecord(state, record, record.finishedAt);
    leadTimes.push(...(applied.leadTimes ?? []));
    if (applied.rollback) rollbacks += 1;
    state = new Map([...state, ...applied.families.map((f) => [f.name, f] as const)]);
  }
  expect(state.has(FAMILIES.deployments.name)).toBe(true);
  return { leadTimes: leadTimes.sort((a, b) => a - b), rollbacks };
}

/** Samples as the store's query API gives them back. */
const asRaw = (series: TimeSeries[]) =>
  series.map((s) => ({
    metric: Object.fromEntries(s.labels.map((l) => [l.name, l.value])),
    values: s.samples.map((x) => [x.timestampMs / 1000, String(x.value)] as [number, string]),
  }));

/** Remote-write's model: each record's samples computed from the samples the previous ones wrote. */
function onRemoteWrite(list: DeploymentRecord[]): Expected {
  const written: TimeSeries[] = [];
  const leadTimes: number[] = [];
  let rollbacks = 0;
  for (const record of list) {
    const history: PastEvent[] = pastEvents(asRaw(written));
    const ledger = ledgerFor(grouping, record, history);
    leadTimes.push(...(ledger.leadTimes ?? []));
    rollbacks += ledger.series.filter((s) => s.labels.some((l) => l.value === LEDGER.rollback)).length;
    written.push(...ledger.series);
  }
  return { leadTimes: leadTimes.sort((a, b) => a - b), rollbacks };
}

const hour = 3600;

describe('lead time and rollbacks, the same on both backends and as the definitions say', () => {
  // m0 ← m1 ← m2 ← M (merge of m2 and f1) ← m3, and a feature branch m1 ← f1 deployed before its merge.
  const branchy: Graph = {
    m0: { parents: [], time: T0 },
    m1: { parents: ['m0'], time: T0 + 1 * hour },
    f1: { parents: ['m1'], time: T0 + 2 * hour },
    m2: { parents: ['m1'], time: T0 + 3 * hour },
    M: { parents: ['m2', 'f1'], time: T0 + 4 * hour },
    m3: { parents: ['M'], time: T0 + 5 * hour },
  };
  const day = 86_400;
  const at = (n: number) => T0 + day + n * hour;

  const histories: Record<
    string,
    { graph: Graph; deploys: { commit: string; status: 'success' | 'failure'; at: number }[] }
  > = {
    'a branch deployed before its merge, a merge, a rollback, a roll-forward and a redeploy': {
      graph: branchy,
      deploys: [
        { commit: 'm0', status: 'success', at: at(0) },
        { commit: 'f1', status: 'success', at: at(1) },
        { commit: 'm2', status: 'success', at: at(2) },
        { commit: 'M', status: 'failure', at: at(3) },
        { commit: 'M', status: 'success', at: at(4) },
        { commit: 'm2', status: 'success', at: at(5) },
        { commit: 'm3', status: 'success', at: at(6) },
        { commit: 'm3', status: 'success', at: at(7) },
      ],
    },
    'a group adopted mid-history and rolled back': {
      graph: {
        c1: { parents: [], time: T0 },
        c2: { parents: ['c1'], time: T0 + hour },
        c3: { parents: ['c2'], time: T0 + 2 * hour },
        c4: { parents: ['c3'], time: T0 + 3 * hour },
      },
      deploys: [
        { commit: 'c3', status: 'success', at: at(0) },
        { commit: 'c1', status: 'success', at: at(1) },
        { commit: 'c3', status: 'success', at: at(2) },
        { commit: 'c4', status: 'success', at: at(3) },
      ],
    },
  };

  for (const [name, { graph, deploys }] of Object.entries(histories)) {
    it(name, () => {
      const expected = oracle(graph, deploys);
      const list = records(graph, deploys);
      expect(onPushgateway(list)).toEqual(expected);
      expect(onRemoteWrite(list)).toEqual(expected);
    });
  }

  it('counts what the oracle counts for the two histories (a check of the oracle itself)', () => {
    const first = oracle(histories[Object.keys(histories)[0]!]!.graph, histories[Object.keys(histories)[0]!]!.deploys);
    // m0 alone; f1 brings f1 and m1; m2 brings m2; M brings M; m2 is a rollback; m3 brings m3.
    expect(first.leadTimes).toHaveLength(6);
    expect(first.rollbacks).toBe(1);
    const adopted = oracle(
      histories[Object.keys(histories)[1]!]!.graph,
      histories[Object.keys(histories)[1]!]!.deploys,
    );
    expect(adopted).toEqual({ leadTimes: [at(0) - (T0 + 2 * hour), at(3) - (T0 + 3 * hour)], rollbacks: 1 });
  });
});
