import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/core/errors.js';
import {
  configCheck,
  fillVariables,
  judge,
  parseCheck,
  parseVerifyDuration,
  plannedRounds,
  promqlEscape,
  verdictOf,
} from '../../src/core/verify.js';

describe('parseCheck', () => {
  it('takes the bound at the end, whatever comparisons the query holds', () => {
    expect(parseCheck('sum(rate(errors[5m])) <= 0.5', 0)).toEqual({
      name: 'check 1',
      query: 'sum(rate(errors[5m]))',
      bounds: [{ op: '<=', value: 0.5 }],
    });
    expect(parseCheck('up{job="a"} > 0 >= 1', 1).bounds).toEqual([{ op: '>=', value: 1 }]);
    expect(parseCheck('up{job="a"} > 0 >= 1', 1).query).toBe('up{job="a"} > 0');
    expect(parseCheck('x<3', 0)).toMatchObject({ query: 'x', bounds: [{ op: '<', value: 3 }] });
    expect(parseCheck('x > -1e3', 0).bounds).toEqual([{ op: '>', value: -1000 }]);
    expect(parseCheck('histogram_quantile(0.99, x) >= .5', 0).bounds).toEqual([{ op: '>=', value: 0.5 }]);
  });

  it.each([
    ['up', /no bound/],
    ['up <= ', /no bound|not a number/],
    ['up <= x', /not a number/],
    ['up <= 1x', /not a number/],
    ['up <= NaN', /not a number/],
    ['up <= Inf', /not a number/],
    ['<= 3', /no query/],
    ['up == 1', /no bound|not a number/],
    ['up > <= 3', /two comparisons/],
  ])('refuses %j as a usage error', (text, reason) => {
    expect(() => parseCheck(text, 0)).toThrow(UsageError);
    expect(() => parseCheck(text, 0)).toThrow(reason);
  });
});

describe('configCheck', () => {
  it('makes max and min bounds, and needs one', () => {
    expect(configCheck({ name: 'errors', query: 'e', max: 1, min: 0 }, 'verify.checks.0').bounds).toEqual([
      { op: '<=', value: 1 },
      { op: '>=', value: 0 },
    ]);
    expect(() => configCheck({ name: 'x', query: 'e' }, 'verify.checks.3')).toThrow(/verify\.checks\.3/);
  });
});

describe('fillVariables', () => {
  it('fills service, environment and version, escaped for a PromQL string', () => {
    expect(
      fillVariables('up{service="$service",env="${environment}",v="$version"}', {
        service: 'a"b\\c',
        environment: 'prod\n',
        version: "1.0'",
      }),
    ).toBe('up{service="a\\"b\\\\c",env="prod\\n",v="1.0\\\'"}');
    expect(fillVariables('$services', { service: 's', environment: 'e' })).toBe('$services');
    expect(promqlEscape('a\tb')).toBe('a\\tb');
  });

  it('refuses $version when no version is known', () => {
    expect(() => fillVariables('x{v="$version"}', { service: 's', environment: 'e' })).toThrow(UsageError);
  });
});

describe('judge', () => {
  const le1 = [{ op: '<=' as const, value: 1 }];
  it('passes only when every sample keeps every bound', () => {
    expect(judge([{ labels: {}, value: 1 }], le1)).toBe('pass');
    expect(
      judge(
        [
          { labels: {}, value: 0.5 },
          { labels: { a: 'b' }, value: 1.5 },
        ],
        le1,
      ),
    ).toBe('fail');
    expect(judge([{ labels: {}, value: Number.NaN }], le1)).toBe('fail');
    expect(judge([], le1)).toBe('no-data');
    expect(judge([{ labels: {}, value: 1 }], [{ op: '<', value: 1 }])).toBe('fail');
    expect(judge([{ labels: {}, value: 1 }], [{ op: '>', value: 1 }])).toBe('fail');
    expect(judge([{ labels: {}, value: 1 }], [{ op: '>=', value: 1 }])).toBe('pass');
    expect(
      judge(
        [{ labels: {}, value: 5 }],
        [
          { op: '<=', value: 10 },
          { op: '>=', value: 6 },
        ],
      ),
    ).toBe('fail');
  });
});

describe('verdictOf', () => {
  const r = (...verdicts: [string, 'pass' | 'fail' | 'no-data' | 'error'][]) =>
    verdicts.map(([name, verdict]) => ({ name, verdict }));
  it('passes when every check was judged and kept its bound', () => {
    expect(verdictOf([r(['a', 'pass'], ['b', 'pass'])])).toBe('pass');
    // no data in one round but an answer in another: judged
    expect(verdictOf([r(['a', 'no-data']), r(['a', 'pass'])])).toBe('pass');
  });
  it('fails on a failed round, or after failureLimit of them', () => {
    expect(verdictOf([r(['a', 'pass']), r(['a', 'fail'])])).toBe('fail');
    expect(verdictOf([r(['a', 'fail'], ['b', 'error'])])).toBe('fail');
    expect(verdictOf([r(['a', 'pass']), r(['a', 'fail'])], 2)).toBe('pass');
    expect(verdictOf([r(['a', 'fail']), r(['a', 'fail'])], 2)).toBe('fail');
  });
  it('is inconclusive when a check never had data or an answer, or nothing ran', () => {
    expect(verdictOf([r(['a', 'pass'], ['b', 'no-data']), r(['a', 'pass'], ['b', 'error'])])).toBe('inconclusive');
    expect(verdictOf([r(['a', 'error'])])).toBe('inconclusive');
    expect(verdictOf([])).toBe('inconclusive');
  });
});

describe('durations', () => {
  it('reads 30s, 5m, 1h, 1m30s, 0 and refuses the rest', () => {
    expect(parseVerifyDuration('--for', '30s')).toBe(30);
    expect(parseVerifyDuration('--for', '5m')).toBe(300);
    expect(parseVerifyDuration('--for', '1h')).toBe(3600);
    expect(parseVerifyDuration('--for', '1m30s')).toBe(90);
    expect(parseVerifyDuration('--for', '500ms')).toBe(0.5);
    expect(parseVerifyDuration('--for', '0')).toBe(0);
    for (const bad of ['', '-1s', '1d', '1.5m', 'five', '25h'])
      expect(() => parseVerifyDuration('--for', bad)).toThrow(UsageError);
  });
  it('plans one round at the start and one per interval', () => {
    expect(plannedRounds(0, 30)).toBe(1);
    expect(plannedRounds(300, 30)).toBe(11);
    expect(plannedRounds(3, 1)).toBe(4);
  });
});
