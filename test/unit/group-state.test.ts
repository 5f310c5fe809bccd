import { describe, expect, it } from 'vitest';
import { redactUrl } from '../../src/adapters/http-endpoint.js';
import { encodeGroupingValue, groupPath } from '../../src/backends/pushgateway/client.js';
import { findGroupState, goJsonString, parseGroupState } from '../../src/backends/pushgateway/group-state.js';

const grouping = { job: 'deployctl', service: 'a/b', environment: 'prod' };
const labels = { environment: 'prod', instance: '', job: 'deployctl', service: 'a/b' };

// The shape of `GET /api/v1/metrics` as prometheus-pushgateway 1.5.1 answers it.
const answer = {
  status: 'success',
  data: [
    {
      labels: { job: 'deployctl', service: 'a/b', environment: 'staging' },
      x_total: { type: 'COUNTER', metrics: [{ labels, value: '99' }] },
    },
    {
      labels: { job: 'deployctl', service: 'a/b', environment: 'prod' },
      last_push_successful: true,
      push_time_seconds: { type: 'GAUGE', metrics: [{ labels, value: '1.7e+09' }] },
      x_total: { type: 'COUNTER', help: 'X.', metrics: [{ labels: { ...labels, status: 'ok' }, value: '3' }] },
      h: {
        type: 'HISTOGRAM',
        metrics: [{ labels, buckets: { '+Inf': '2', '10': '2', '1': '1' }, count: '2', sum: '5.5' }],
      },
      s: { type: 'SUMMARY', metrics: [] },
    },
  ],
};

describe('parseGroupState', () => {
  it('finds the group by its exact grouping labels and strips them from each series', () => {
    const state = parseGroupState(JSON.stringify(answer), grouping);
    expect([...state.keys()]).toEqual(['x_total', 'h', 's']);
    expect(state.get('x_total')).toEqual({
      name: 'x_total',
      help: 'X.',
      type: 'counter',
      series: [{ labels: { status: 'ok' }, value: 3 }],
    });
    expect(state.get('h')).toEqual({
      name: 'h',
      help: '',
      type: 'histogram',
      series: [
        {
          labels: {},
          buckets: [
            { le: 1, count: 1 },
            { le: 10, count: 2 },
          ],
          sum: 5.5,
          count: 2,
        },
      ],
    });
    expect(state.get('s')?.type).toBe('summary');
  });

  it('gives an empty state for a group that is not there', () => {
    expect(parseGroupState(JSON.stringify(answer), { ...grouping, service: 'other' }).size).toBe(0);
  });

  it('says so when the answer is not the gateway API', () => {
    expect(() => parseGroupState('<html>', grouping)).toThrow(/not JSON/);
    expect(() => parseGroupState('{"status":"success"}', grouping)).toThrow(/without a list of groups/);
  });
});

describe('grouping key', () => {
  it('encodes every value as URL-safe base64, the empty value as =', () => {
    expect(encodeGroupingValue('service', 'a/b')).toBe('service@base64/YS9i');
    expect(encodeGroupingValue('environment', '')).toBe('environment@base64/=');
    expect(encodeGroupingValue('service', '??>')).toBe('service@base64/Pz8-');
    expect(groupPath(grouping)).toBe('/metrics/job@base64/ZGVwbG95Y3Rs/service@base64/YS9i/environment@base64/cHJvZA');
  });
});

describe('redactUrl', () => {
  it('hides user, password and query', () => {
    expect(redactUrl('https://bob:pw@gw.example:9091/base?token=t')).toBe('https://***@gw.example:9091/base');
    expect(redactUrl('http://localhost:9091')).toBe('http://localhost:9091/');
  });
});

describe('findGroupState', () => {
  const make = (groups: Record<string, unknown>[]) => Buffer.from(JSON.stringify({ status: 'success', data: groups }));
  const group = (service: string, environment: string, value: string) => ({
    deployctl_deployments_total: {
      type: 'COUNTER',
      metrics: [{ labels: { environment, instance: '', job: 'deployctl', service, status: 'success' }, value }],
    },
    labels: { environment, job: 'deployctl', service },
    last_push_successful: true,
  });

  it('finds one group among many by its labels, with braces and quotes in values', () => {
    const tricky = 'a}"{]\\[b';
    const body = make([group('x', 'prod', '1'), group(tricky, 'prod', '7'), group('x', 'staging', '2')]);
    const state = findGroupState(body, { job: 'deployctl', service: tricky, environment: 'prod' });
    expect(state.get('deployctl_deployments_total')?.series).toEqual([{ labels: { status: 'success' }, value: 7 }]);
    expect(
      findGroupState(body, { job: 'deployctl', service: 'x', environment: 'staging' }).get(
        'deployctl_deployments_total',
      )?.series[0],
    ).toMatchObject({ value: 2 });
  });

  it('is empty for a group that is not there', () => {
    const body = make([group('x', 'prod', '1')]);
    expect(findGroupState(body, { job: 'deployctl', service: 'y', environment: 'prod' }).size).toBe(0);
    expect(findGroupState(body, { job: 'deployctl', service: 'x', environment: 'dev' }).size).toBe(0);
  });

  it('fails on an answer that is not the gateway API, rather than finding no group', () => {
    const group = { job: 'deployctl', service: 'x', environment: 'prod' };
    expect(() => findGroupState(Buffer.from('<!doctype html><html><body>Sign in</body></html>'), group)).toThrow(
      /not JSON/,
    );
    expect(() => findGroupState(Buffer.from('{"groups":[]}'), group)).toThrow(/without a list of groups/);
    expect(() => findGroupState(Buffer.from('{"status":"error","data":[]}'), group)).toThrow(
      /without a list of groups/,
    );
    expect(findGroupState(Buffer.from(' {"status":"success","data":[]}'), group).size).toBe(0);
  });

  it('escapes like the gateway’s Go encoder', () => {
    expect(goJsonString('a<b>&"c"\u2028')).toBe('"a\\u003cb\\u003e\\u0026\\"c\\"\\u2028"');
  });
});
