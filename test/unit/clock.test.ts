import { describe, expect, it } from 'vitest';
import {
  CLOCK_TOLERANCE_SECONDS,
  clockCorrection,
  clockOffset,
  clockWarning,
  formatOffset,
  type ServerClock,
  serverClockFrom,
  serverNow,
  settleRecordTimes,
} from '../../src/core/clock.js';
import type { DeploymentRecord, StartRecord, StepRecord, VerificationRecord } from '../../src/core/record.js';

const NOW = 1_796_475_000; // the server's clock, 2026-12-05T12:50:00Z
const DAY = 86_400;
const SERVER = 'the gateway at http://gateway:9091/';
const DATE = new Date(NOW * 1000).toUTCString(); // "Sat, 05 Dec 2026 12:50:00 GMT"

/** The server's clock as an answer gives it, on a machine whose clock is `skew` seconds off (read half a second into the server's second). */
const answer = (skew: number): ServerClock => serverClockFrom(DATE, NOW + 0.5 + skew)!;

const deployment = (finishedAt: number, extra: Partial<DeploymentRecord> = {}): DeploymentRecord => ({
  kind: 'deployment',
  id: 'r1',
  status: 'failure',
  finishedAt,
  durationSeconds: 42,
  version: '1',
  commit: 'abc',
  labels: {},
  ...extra,
});

describe('the server clock from an answer', () => {
  it('reads the Date header of an answer (IMF-fixdate) and when it arrived', () => {
    expect(serverClockFrom(DATE, 123)).toEqual({ serverSeconds: NOW, localSeconds: 123 });
    // RFC 850 and asctime forms are what Date.parse reads too; an HTTP date has whole seconds.
    expect(serverClockFrom('Saturday, 05-Dec-26 12:50:00 GMT', 1)?.serverSeconds).toBe(NOW);
  });

  it('ignores an answer without a Date, or one that is not a date, or before 2000', () => {
    expect(serverClockFrom(undefined, NOW)).toBeUndefined();
    expect(serverClockFrom('', NOW)).toBeUndefined();
    expect(serverClockFrom('yesterday', NOW)).toBeUndefined();
    expect(serverClockFrom('Thu, 01 Jan 1970 00:00:00 GMT', NOW)).toBeUndefined();
  });

  it('takes the middle of the Date second: the offset is good to half a second', () => {
    expect(clockOffset(answer(0))).toBe(0);
    expect(clockOffset(serverClockFrom(DATE, NOW)!)).toBe(0.5);
    expect(clockOffset(answer(DAY))).toBe(-DAY);
    expect(clockOffset(answer(-DAY))).toBe(DAY);
  });

  it("gives the server's now by this machine's clock, or this machine's own without an answer", () => {
    expect(serverNow(answer(DAY), NOW + DAY + 10)).toBe(NOW + 10);
    expect(serverNow(undefined, NOW + DAY)).toBe(NOW + DAY);
  });

  it('corrects only a clock more than 5 minutes off, by whole seconds', () => {
    expect(CLOCK_TOLERANCE_SECONDS).toBe(300);
    expect(clockCorrection(answer(0))).toBe(0);
    expect(clockCorrection(answer(299))).toBe(0);
    expect(clockCorrection(answer(-300))).toBe(0);
    expect(clockCorrection(answer(301))).toBe(-301);
    expect(clockCorrection(answer(DAY + 0.3))).toBe(-DAY);
    expect(clockCorrection(answer(-DAY))).toBe(DAY);
  });

  it('says how far the clock is off, ahead or behind, and what to do; nothing within the tolerance', () => {
    expect(clockWarning(answer(60), SERVER)).toBeUndefined();
    expect(clockWarning(undefined, SERVER)).toBeUndefined();
    const ahead = clockWarning(answer(DAY), SERVER)!;
    expect(ahead).toContain("this machine's clock is 1 day (86400 s) ahead of the clock of the gateway at");
    expect(ahead).toContain('corrected by -86400 s');
    expect(ahead).toContain('NTP');
    expect(clockWarning(answer(-2.5 * 3_600), SERVER)).toContain('2.5 hours (9000 s) behind');
  });

  it('formats offsets in days, hours or minutes, with the seconds', () => {
    expect(formatOffset(-DAY)).toBe('1 day (86400 s)');
    expect(formatOffset(3 * DAY + 3_600)).toBe('3 days (262800 s)');
    expect(formatOffset(3_600)).toBe('1 hour (3600 s)');
    expect(formatOffset(420)).toBe('7 minutes (420 s)');
  });
});

describe("a record's times against the server's clock", () => {
  it('moves a time read from a clock a day ahead back to the server time, and notes it', () => {
    const record = deployment(NOW + DAY + 5, { timeFromClock: true });
    const settled = settleRecordTimes(record, answer(DAY), NOW + DAY + 6, SERVER);
    expect(settled.changed).toBe(true);
    expect(settled.record).toEqual({ ...record, finishedAt: NOW + 5, clockCorrection: -DAY });
    expect(settled.record).not.toBe(record);
    expect(record.finishedAt).toBe(NOW + DAY + 5); // the record given is not changed
    expect(settled.notices).toEqual([
      `the finish time 2026-12-06T12:50:05Z, read from this machine's clock, is recorded as 2026-12-05T12:50:05Z by the clock of ${SERVER}`,
    ]);
    expect(settled.warnings).toEqual([]);
  });

  it('moves a time read from a clock a day behind forward: a deployment is not placed a day early', () => {
    const settled = settleRecordTimes(deployment(NOW - DAY, { timeFromClock: true }), answer(-DAY), NOW - DAY, SERVER);
    expect(settled.record).toMatchObject({ finishedAt: NOW, clockCorrection: DAY, durationSeconds: 42 });
  });

  it("moves a verification's start with its finish: both were read from the same clock", () => {
    const verification: VerificationRecord = {
      kind: 'verification',
      id: 'v',
      result: 'fail',
      startedAt: NOW + DAY - 300,
      finishedAt: NOW + DAY,
      timeFromClock: true,
    };
    expect(settleRecordTimes(verification, answer(DAY), NOW + DAY, SERVER).record).toEqual({
      ...verification,
      startedAt: NOW - 300,
      finishedAt: NOW,
      clockCorrection: -DAY,
    });
  });

  it('corrects the start time of a start and the finish time of a step alike', () => {
    const start: StartRecord = { kind: 'start', id: 's', startedAt: NOW + DAY, timeFromClock: true };
    expect(settleRecordTimes(start, answer(DAY), NOW + DAY, SERVER).record).toEqual({
      ...start,
      startedAt: NOW,
      clockCorrection: -DAY,
    });
    const step: StepRecord = {
      kind: 'step',
      id: 'p',
      step: 'build',
      status: 'success',
      finishedAt: NOW + DAY,
      durationSeconds: 3,
      timeFromClock: true,
    };
    expect(settleRecordTimes(step, answer(DAY), NOW + DAY, SERVER).record).toMatchObject({
      finishedAt: NOW,
      durationSeconds: 3,
    });
  });

  it('leaves a clock within 5 minutes alone: nothing changes, nothing is kept again', () => {
    const record = deployment(NOW + 200, { timeFromClock: true });
    const settled = settleRecordTimes(record, answer(200), NOW + 200, SERVER);
    expect(settled).toEqual({ record, changed: false, notices: [], warnings: [] });
    expect(settled.record).toBe(record);
  });

  it('changes nothing without an answer that told the server clock', () => {
    const record = deployment(NOW + DAY, { timeFromClock: true });
    expect(settleRecordTimes(record, undefined, NOW + DAY, SERVER).record).toBe(record);
  });

  it('never checks a record twice: a corrected record is sent again as it was kept', () => {
    const record = deployment(NOW, { timeFromClock: true, clockCorrection: -DAY });
    expect(settleRecordTimes(record, answer(-DAY), NOW - DAY, SERVER).record).toBe(record);
  });

  it('keeps a given time (--finished-at) as given, on a skewed clock too', () => {
    const past = deployment(NOW - 3_600);
    expect(settleRecordTimes(past, answer(DAY), NOW + DAY, SERVER).record).toBe(past);
    expect(settleRecordTimes(past, answer(-DAY), NOW - DAY, SERVER).record).toBe(past);
    const nearlyNow = deployment(NOW + CLOCK_TOLERANCE_SECONDS - 1);
    expect(settleRecordTimes(nearlyNow, answer(DAY), NOW + DAY, SERVER).record).toBe(nearlyNow);
  });

  it("records a given time more than 5 minutes ahead of the server's clock at the server's now, with a warning", () => {
    const record = deployment(NOW + 7_200);
    const settled = settleRecordTimes(record, answer(DAY), NOW + DAY, SERVER);
    expect(settled.record).toMatchObject({ finishedAt: NOW, clockCorrection: -7_200 });
    expect(settled.warnings).toEqual([
      `the finish time 2026-12-05T14:50:00Z is 2 hours (7200 s) ahead of the clock of ${SERVER} (2026-12-05T12:50:00Z): it is recorded as 2026-12-05T12:50:00Z, as nothing is written later than the server's now plus 5 minutes; check the time given (--finished-at) and this machine's clock`,
    ]);
    const start: StartRecord = { kind: 'start', id: 's', startedAt: NOW + 3_600 };
    expect(settleRecordTimes(start, answer(0), NOW, SERVER).warnings[0]).toContain(
      'check the time given (--started-at)',
    );
  });

  it("records a time read from a clock that was moved since (a kept record) at the server's now at the latest", () => {
    // Made a day ahead and kept; the clock is right by the time it is sent.
    const record = deployment(NOW + DAY - 60, { timeFromClock: true });
    const settled = settleRecordTimes(record, answer(0), NOW, SERVER);
    expect(settled.record).toMatchObject({ finishedAt: NOW, clockCorrection: NOW - (NOW + DAY - 60) });
    expect(settled.warnings[0]).toContain(
      'is ahead of the clock of the gateway at http://gateway:9091/ (the clock was moved since',
    );
    expect(settled.notices).toEqual([]);
  });

  it('never gives a time more than 5 minutes ahead of the server, whatever the clocks', () => {
    for (const skew of [-2 * DAY, -DAY, -400, -1, 0, 1, 400, DAY, 30 * DAY])
      for (const made of [-DAY, -3_600, 0, 299, 301, DAY])
        for (const timeFromClock of [true, undefined]) {
          const record = deployment(NOW + made + (timeFromClock ? skew : 0), timeFromClock ? { timeFromClock } : {});
          const { record: settled } = settleRecordTimes(record, answer(skew), NOW + skew, SERVER);
          expect((settled as DeploymentRecord).finishedAt).toBeLessThanOrEqual(NOW + CLOCK_TOLERANCE_SECONDS + 1);
        }
  });
});
