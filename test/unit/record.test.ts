import { describe, expect, it } from 'vitest';
import { resolveTiming } from '../../src/cli/commands/record.js';

describe('resolveTiming', () => {
  const now = 1_767_225_600;
  it('ends now without times, with no duration', () => {
    expect(resolveTiming({}, now)).toEqual({ finishedAt: now });
  });
  it('takes --duration as given, ending now or at --finished-at', () => {
    expect(resolveTiming({ duration: '90' }, now)).toEqual({ finishedAt: now, durationSeconds: 90 });
    expect(resolveTiming({ duration: '90', finishedAt: String(now - 1000) }, now)).toEqual({
      finishedAt: now - 1000,
      durationSeconds: 90,
    });
  });
  it('derives the duration from --started-at and --finished-at', () => {
    expect(resolveTiming({ startedAt: '2026-01-01T00:00:00Z', finishedAt: '2026-01-01T00:01:30Z' }, now)).toEqual({
      finishedAt: now + 90,
      durationSeconds: 90,
    });
    expect(resolveTiming({ startedAt: String(now - 30) }, now)).toEqual({ finishedAt: now, durationSeconds: 30 });
  });
  it('refuses a finish before the start and two ways of giving the duration', () => {
    expect(() => resolveTiming({ startedAt: String(now - 100), finishedAt: String(now - 200) }, now)).toThrow(
      /before --started-at/,
    );
    expect(() => resolveTiming({ startedAt: '200', duration: '5' }, now)).toThrow(/not both/);
  });
  it('refuses impossible times and durations', () => {
    expect(() => resolveTiming({ startedAt: '0' }, now)).toThrow(/--started-at "0" is before 2000/);
    expect(() => resolveTiming({ startedAt: '2000-01-01' }, now)).toThrow(
      /a deployment that took 9497 days is not plausible; the limit is 7 days/,
    );
    expect(() => resolveTiming({ duration: '1e308' }, now)).toThrow(/--duration must be a number of seconds/);
    expect(() => resolveTiming({ duration: String(8 * 86_400) }, now)).toThrow(/not plausible/);
    expect(() => resolveTiming({ finishedAt: String(now * 1000) }, now)).toThrow(
      /looks like milliseconds since 1970, not seconds .* in seconds it is 1767225600 \(2026-01-01T00:00:00Z\)/,
    );
    expect(() => resolveTiming({ finishedAt: String(now + 3_600) }, now)).toThrow(/in the future/);
  });
});
