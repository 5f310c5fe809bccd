import { describe, expect, it } from 'vitest';
import { classifyAnswer, queryBaseFor } from '../../../src/backends/remote-write/client.js';
import {
  historyQuery,
  LEDGER,
  ledgerFor,
  type PastEvent,
  pastEvents,
  sampleTimeMs,
} from '../../../src/backends/remote-write/ledger.js';
import type { TimeSeries } from '../../../src/backends/remote-write/protobuf.js';
import { mergeEvents } from '../../../src/backends/remote-write/recent-records.js';
import type { DeploymentRecord } from '../../../src/core/record.js';

const grouping = { job: 'deployctl', service: 'shop/api', environment: 'prod' };
const T = 1_767_225_600;

function deployment(
  id: string,
  status: DeploymentRecord['status'],
  finishedAt: number,
  extra: Partial<DeploymentRecord> = {},
): DeploymentRecord {
  return { kind: 'deployment', id, status, finishedAt, version: '1.0', commit: `c-${id}`, labels: {}, ...extra };
}

const named = (series: TimeSeries[], name: string) =>
  series.filter((s) => s.labels.some((l) => l.name === '__name__' && l.value === name));
const labelsOf = (s: TimeSeries) => Object.fromEntries(s.labels.map((l) => [l.name, l.value]));

function past(record: DeploymentRecord): PastEvent {
  return {
    kind: 'deployment',
    at: record.finishedAt,
    timestampMs: sampleTimeMs(record.finishedAt, record.id),
    status: record.status,
    commit: record.commit,
  };
}

describe('sample times', () => {
  it('are never after the finish time, within a second of it, and the same for a retry of one record', () => {
    const t = sampleTimeMs(T + 0.75, 'a');
    expect(t).toBeLessThanOrEqual(T * 1000);
    expect(t).toBeGreaterThan((T - 1) * 1000);
    expect(Math.max(...['a', 'b', 'c', 'd', 'e'].map((id) => sampleTimeMs(T + 1, id)))).toBeGreaterThan(T * 1000);
    expect(sampleTimeMs(T + 0.75, 'a')).toBe(t);
  });

  it('differ for two deployments finishing in the same millisecond', () => {
    const ids = ['3f1c0e4e-1', '3f1c0e4e-2', '3f1c0e4e-3', '3f1c0e4e-4'];
    const times = ids.map((id) => sampleTimeMs(T + 0.123, id));
    expect(new Set(times).size).toBe(ids.length);
  });

  it('move to the next free millisecond when a known deployment of the group is on it', () => {
    const mine = sampleTimeMs(T, 'mine');
    const collided: PastEvent = { ...past(deployment('other', 'failure', T + 0.5)), timestampMs: mine };
    const next: PastEvent = { ...past(deployment('next', 'failure', T + 0.9)), timestampMs: mine + 1 };
    const { series, timeToRestore } = ledgerFor(grouping, deployment('mine', 'success', T + 1 - 0.001), [
      collided,
      next,
    ]);
    const own = series.filter((s) => !s.labels.some((l) => l.value === LEDGER.failedRecovery));
    expect(new Set(own.map((s) => s.samples[0]!.timestampMs))).toEqual(new Set([mine + 2]));
    // Both failures sit before its millisecond: it ended their streak.
    expect(timeToRestore).toBeCloseTo(0.499, 6);
  });
});

describe('the ledger of a deployment', () => {
  it('is a sample per series at the finish time, labels sorted, --label ones kept', () => {
    const record = deployment('a', 'success', T, {
      durationSeconds: 42,
      labels: { team: 'shop' },
      commitTime: T - 600,
    });
    const { series, leadTimes } = ledgerFor(grouping, record, []);
    const t = sampleTimeMs(T, 'a');
    for (const s of series) {
      expect(s.samples).toHaveLength(1);
      expect(s.samples[0]!.timestampMs).toBe(t);
      const names = s.labels.map((l) => l.name);
      expect(names).toEqual([...names].sort());
    }
    expect(labelsOf(named(series, LEDGER.finished)[0]!)).toEqual({
      __name__: LEDGER.finished,
      ...grouping,
      status: 'success',
      team: 'shop',
    });
    expect(named(series, LEDGER.finished)[0]!.samples[0]!.value).toBe(T);
    expect(named(series, LEDGER.duration)[0]!.samples[0]!.value).toBe(42);
    expect(labelsOf(named(series, LEDGER.version)[0]!)).toMatchObject({ version: '1.0', commit: 'c-a' });
    expect(leadTimes).toEqual([600]);
    expect(named(series, LEDGER.leadTimeSum)[0]!.samples[0]!.value).toBe(600);
    const buckets = named(series, LEDGER.leadTimeBucket).map((s) => [labelsOf(s).le, s.samples[0]!.value]);
    expect(buckets.at(0)).toEqual(['300', 0]);
    expect(buckets.at(1)).toEqual(['900', 1]);
    expect(buckets.at(-1)).toEqual(['+Inf', 1]);
  });

  it('observes time to restore from the first failure after the last success', () => {
    const history = [
      deployment('s1', 'success', T),
      deployment('f1', 'failure', T + 100),
      deployment('x', 'cancelled', T + 150),
      deployment('f2', 'failure', T + 200),
    ].map(past);
    const ledger = ledgerFor(grouping, deployment('s2', 'success', T + 1_000), history);
    expect(ledger.timeToRestore).toBe(900);
    expect(named(ledger.series, LEDGER.timeToRestore)[0]!.samples[0]!.value).toBe(900);
    expect(
      ledgerFor(grouping, deployment('s3', 'success', T + 2_000), [
        ...history,
        past(deployment('s2', 'success', T + 1_000)),
      ]).timeToRestore,
    ).toBeUndefined();
    expect(ledgerFor(grouping, deployment('f3', 'failure', T + 2_000), history).timeToRestore).toBeUndefined();
  });

  it('counts the commits after the previously deployed one for lead time', () => {
    const historyOfGit = [
      { sha: 'c3', parents: ['c2'], time: T - 100 },
      { sha: 'c2', parents: ['c1'], time: T - 200 },
      { sha: 'c1', parents: [], time: T - 1_000 },
    ];
    const previous = { ...past(deployment('s1', 'success', T - 500)), commit: 'c1' };
    const ledger = ledgerFor(grouping, deployment('s2', 'success', T, { commit: 'c3', history: historyOfGit }), [
      previous,
    ]);
    expect(ledger.leadTimes?.sort()).toEqual([100, 200]);
    const first = ledgerFor(grouping, deployment('s0', 'success', T, { commit: 'c3', history: historyOfGit }), []);
    expect(first.leadTimes).toEqual([100]);
    expect(first.notices[0]).toContain('first deployment');
  });

  it('takes the duration from a start in the store when the record has none', () => {
    const start: PastEvent = { kind: 'start', at: T - 300, timestampMs: sampleTimeMs(T - 300, 'st') };
    expect(
      ledgerFor(grouping, deployment('d', 'success', T, { durationFromGatewayStart: true }), [start]).durationSeconds,
    ).toBe(300);
    const none = ledgerFor(grouping, deployment('d', 'success', T, { durationFromGatewayStart: true }), []);
    expect(none.durationSeconds).toBeUndefined();
    expect(none.notices.join()).toContain('no start of this deployment is known');
  });

  it('writes starts and steps as one sample each', () => {
    expect(ledgerFor(grouping, { kind: 'start', id: 's', startedAt: T }, []).series.map(labelsOf)).toEqual([
      { __name__: LEDGER.started, ...grouping },
    ]);
    const step = ledgerFor(
      grouping,
      { kind: 'step', id: 'p', step: 'build', status: 'success', finishedAt: T, durationSeconds: 3 },
      [],
    ).series;
    expect(step.map(labelsOf)).toEqual([{ __name__: LEDGER.step, ...grouping, step: 'build', status: 'success' }]);
    expect(step[0]!.samples).toEqual([{ value: 3, timestampMs: sampleTimeMs(T, 'p') }]);
  });
});

describe('the history read back', () => {
  it('joins time and status with commit by sample time', () => {
    const ts = sampleTimeMs(T, 'a') / 1000;
    const events = pastEvents([
      { metric: { __name__: LEDGER.finished, status: 'success' }, values: [[ts, String(T)]] },
      {
        metric: { __name__: LEDGER.version, status: 'success', commit: 'abc', version: '1' },
        values: [[ts, String(T)]],
      },
      { metric: { __name__: LEDGER.started }, values: [[ts - 60, String(T - 60)]] },
    ]);
    expect(events).toEqual([
      { kind: 'start', at: T - 60, timestampMs: Math.round((ts - 60) * 1000) },
      { kind: 'deployment', at: T, timestampMs: sampleTimeMs(T, 'a'), status: 'success', commit: 'abc', version: '1' },
    ]);
    expect(mergeEvents(events, [events[1]!])).toHaveLength(2);
  });

  it('selects one group, quoting its values', () => {
    expect(historyQuery({ job: 'j', service: 'a"b', environment: 'p' })).toBe(
      `{__name__=~"${LEDGER.finished}|${LEDGER.version}|${LEDGER.started}|${LEDGER.ancestors}|${LEDGER.rollback}|${LEDGER.verification}|${LEDGER.verificationStarted}|${LEDGER.incident}", job="j", service="a\\"b", environment="p"}[365d]`,
    );
  });
});

describe('store answers', () => {
  it.each([
    [204, '', false],
    [400, 'out of order sample', false],
    [409, 'conflict', false],
    [429, 'slow down', true],
    [500, 'too old sample', false],
    [500, 'out of bounds', false],
    [500, 'internal error', true],
    [503, 'unavailable', true],
  ])('HTTP %i %s: retryable %s', (status, body, retryable) => {
    expect(classifyAnswer(status, body).retryable).toBe(retryable);
  });

  it('derive the query API from the write URL where the store serves both', () => {
    const derived = (url: string) => queryBaseFor(new URL(url))?.toString();
    expect(derived('http://prom:9090/api/v1/write')).toBe('http://prom:9090/');
    expect(derived('https://mimir/api/v1/push')).toBe('https://mimir/prometheus');
    expect(derived('http://vm:8480/insert/42/prometheus/api/v1/write')).toBe('http://vm:8480/select/42/prometheus');
    expect(derived('http://thanos:19291/api/v1/receive')).toBeUndefined();
  });
});

describe('doctor', () => {
  it('reads the out-of-order window from a Prometheus configuration', async () => {
    const { outOfOrderWindow } = await import('../../../src/backends/remote-write/doctor.js');
    expect(
      outOfOrderWindow('global:\n  scrape_interval: 1m\nstorage:\n  tsdb:\n    out_of_order_time_window: 30d\n'),
    ).toBe('30d');
    expect(outOfOrderWindow('global:\n  scrape_interval: 1m\n')).toBeUndefined();
  });
});
