import { describe, expect, it } from 'vitest';
import { resolveTiming } from '../../src/commands/record.js';

describe('resolveTiming', () => {
  const now = 1_767_225_600;
  it('ends now without times, with no duration', () => {
    expect(resolveTiming({}, now)).toEqual({ finishedAt: now });
  });
  it('takes --duration as given, ending now or at --finished-at', () => {
    expect(resolveTiming({ duration: '90' }, now)).toEqual({ finishedAt: now, durationSeconds: 90 });
    expect(resolveTiming({ duration: '90', finishedAt: '1000' }, now)).toEqual({ finishedAt: 1000, durationSeconds: 90 });
  });
  it('derives the duration from --started-at and --finished-at', () => {
    expect(resolveTiming({ startedAt: '2026-01-01T00:00:00Z', finishedAt: '2026-01-01T00:01:30Z' }, now)).toEqual({ finishedAt: now + 90, durationSeconds: 90 });
    expect(resolveTiming({ startedAt: String(now - 30) }, now)).toEqual({ finishedAt: now, durationSeconds: 30 });
  });
  it('refuses a finish before the start and two ways of giving the duration', () => {
    expect(() => resolveTiming({ startedAt: '200', finishedAt: '100' }, now)).toThrow(/before --started-at/);
    expect(() => resolveTiming({ startedAt: '200', duration: '5' }, now)).toThrow(/not both/);
  });
});
