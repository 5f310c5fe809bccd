import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/core/errors.js';
import { parseLabels, parseLabelValue, parseSeconds, parseStatus, parseTimestamp } from '../../src/core/validate.js';

describe('parseTimestamp', () => {
  it.each([
    ['1767225600', 1767225600],
    ['1767225600.25', 1767225600.25],
    ['2026-01-01T00:00:00Z', 1767225600],
    ['2026-01-01T02:00:00+02:00', 1767225600],
    ['2026-01-01T00:00:00.500Z', 1767225600.5],
    ['2026-01-01 00:00:00Z', 1767225600],
    ['2026-01-01', 1767225600],
  ])('reads %s', (text, seconds) => {
    expect(parseTimestamp('--started-at', text)).toBe(seconds);
  });

  it.each(['yesterday', '', '-5', '2026-13-01', '2026-02-30', '2026-01-01T25:00:00Z', '1e9', 'NaN', '12:00'])(
    'refuses %j, listing the accepted formats',
    (text) => {
      expect(() => parseTimestamp('--started-at', text)).toThrow(UsageError);
      try {
        parseTimestamp('--started-at', text);
      } catch (error) {
        expect((error as UsageError).hint).toMatch(
          /^accepted: Unix seconds \(1767225600 or 1767225600.5\), an ISO 8601 date/,
        );
      }
    },
  );

  const now = 1_767_225_600;
  it.each([
    ['0', /is before 2000 \(1970-01-01T00:00:00Z\)/],
    ['1999-12-31T23:59:59Z', /is before 2000/],
    [
      '1767225600000',
      /looks like milliseconds since 1970, not seconds \(as seconds it would be the year 57971\); in seconds it is 1767225600/,
    ],
    ['1767225600000000', /looks like microseconds/],
    ['1767225600000000000', /looks like nanoseconds/],
    [String(now + 301), /is 2026-01-01T00:05:01Z, in the future \(this machine's clock says 2026-01-01T00:00:00Z\)/],
    ['2026-01-02', /in the future/],
  ])('refuses %j as impossible', (text, message) => {
    expect(() => parseTimestamp('--finished-at', text, now)).toThrow(message);
  });

  it('accepts a few minutes ahead of this clock', () => {
    expect(parseTimestamp('--finished-at', String(now + 300), now)).toBe(now + 300);
  });
});

describe('parseSeconds', () => {
  it('reads whole and fractional seconds', () => {
    expect(parseSeconds('--duration', '0')).toBe(0);
    expect(parseSeconds('--duration', '12.5')).toBe(12.5);
    expect(parseSeconds('--duration', '.5')).toBe(0.5);
  });
  it.each(['-1', 'ten', '', '1e3', 'Infinity', '0x10'])('refuses %j', (text) => {
    expect(() => parseSeconds('--duration', text)).toThrow(/--duration must be a number of seconds/);
  });
});

describe('parseLabels', () => {
  it('splits at the first = and keeps the rest of the value', () => {
    expect(parseLabels(['team=core', 'query=a=b', 'empty='])).toEqual({ team: 'core', query: 'a=b', empty: '' });
  });
  it('refuses invalid, reserved and repeated names', () => {
    expect(() => parseLabels(['9lives=x'])).toThrow(/not a valid label name/);
    expect(() => parseLabels(['__name__=x'])).toThrow(/not a valid label name/);
    expect(() => parseLabels(['service=x'])).toThrow(/reserved/);
    expect(() => parseLabels(['a=1', 'a=2'])).toThrow(/given twice/);
    expect(() => parseLabels(['=x'])).toThrow(/key=value/);
  });
});

describe('parseLabelValue', () => {
  it('keeps any printable UTF-8, quotes and backslashes', () => {
    for (const value of ['a/b', 'Zoë "x" \\ y', '☁ 雲', '😀']) expect(parseLabelValue('--version', value)).toBe(value);
  });
  it('refuses empty values, control characters, lone surrogates and very long values', () => {
    expect(() => parseLabelValue('--service', '')).toThrow(/must not be empty/);
    expect(() => parseLabelValue('--service', 'a\nb')).toThrow(/control character/);
    expect(() => parseLabelValue('--service', 'a\u0000b')).toThrow(/control character/);
    expect(() => parseLabelValue('--service', 'a\ud800b')).toThrow(/not valid UTF-8/);
    expect(() => parseLabelValue('--service', 'x'.repeat(1025))).toThrow(/limit is 1024/);
  });
});

describe('parseStatus', () => {
  it('accepts the three statuses only', () => {
    expect(parseStatus('cancelled')).toBe('cancelled');
    expect(() => parseStatus('Success')).toThrow(/must be one of success, failure, cancelled/);
  });
});
