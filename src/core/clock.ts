import { type GroupRecord, recordTime, timeField } from './record.js';

/**
 * This machine's clock against the server's. Every HTTP answer carries the server's clock in its
 * `Date` header; the first answer a backend gets while it delivers tells how far this machine's
 * clock is off. Pure: the callers give both clocks.
 *
 * - A time read from this machine's clock (a record's default finish or start time) is moved by the
 *   measured offset when that is more than CLOCK_TOLERANCE_SECONDS: a runner a day ahead writes
 *   its deployments at the server's now, not a day in the future.
 * - A time the user gave (--finished-at, --started-at) is kept as given: it was read from this
 *   clock only if the user computed it there. Either way no time is written later than the
 *   server's now plus the tolerance: a later one is recorded at the server's now.
 */

/** How far a time may be ahead of the server's clock, and this machine's clock off it (SPEC: Timestamps). */
export const CLOCK_TOLERANCE_SECONDS = 5 * 60;

/** 2000-01-01: a Date before it is not a clock to go by. */
const EARLIEST = 946_684_800;

/** One answer's word on the server's clock. */
export interface ServerClock {
  /** The answer's `Date` (Unix seconds, whole: an HTTP date has no fraction of a second). */
  serverSeconds: number;
  /** This machine's clock when the answer arrived (Unix seconds). */
  localSeconds: number;
}

/** The server's clock from an answer's `Date` header, or undefined when it has none that reads as a date. */
export function serverClockFrom(date: string | undefined, localSeconds: number): ServerClock | undefined {
  if (!date) return undefined;
  const ms = Date.parse(date);
  if (!Number.isFinite(ms) || ms / 1000 < EARLIEST) return undefined;
  return { serverSeconds: Math.floor(ms / 1000), localSeconds };
}

/**
 * Seconds to add to this machine's clock to read the server's. A `Date` is truncated to its
 * second, so the middle of that second is taken: the offset is good to about half a second plus
 * the answer's own time on the way.
 */
export function clockOffset(clock: ServerClock): number {
  return clock.serverSeconds + 0.5 - clock.localSeconds;
}

/** The server's now by this machine's clock now and the measured offset; this machine's own without an answer. */
export function serverNow(clock: ServerClock | undefined, localNow: number): number {
  return clock ? localNow + clockOffset(clock) : localNow;
}

/** The whole seconds by which times read from this machine's clock are moved: 0 within the tolerance. */
export function clockCorrection(clock: ServerClock): number {
  const offset = clockOffset(clock);
  return Math.abs(offset) > CLOCK_TOLERANCE_SECONDS ? Math.round(offset) : 0;
}

const iso = (seconds: number) => new Date(Math.floor(seconds) * 1000).toISOString().replace(/\.000Z$/, 'Z');

/** "1 day (86400 s)", "2.5 hours (9000 s)", "7 minutes (420 s)". */
export function formatOffset(seconds: number): string {
  const abs = Math.round(Math.abs(seconds));
  const [amount, unit] =
    abs >= 86_400 ? [abs / 86_400, 'day'] : abs >= 3_600 ? [abs / 3_600, 'hour'] : [abs / 60, 'minute'];
  const rounded = Number(amount.toFixed(1));
  return `${rounded} ${unit}${rounded === 1 ? '' : 's'} (${abs} s)`;
}

/**
 * The warning about this machine's clock when it is more than the tolerance off the server's, or
 * undefined. `server` names it in messages ("the gateway at http://…").
 */
export function clockWarning(clock: ServerClock | undefined, server: string): string | undefined {
  if (!clock || clockCorrection(clock) === 0) return undefined;
  const offset = clockOffset(clock);
  return (
    `this machine's clock is ${formatOffset(offset)} ${offset < 0 ? 'ahead of' : 'behind'} the clock of ${server} ` +
    `(the Date of its answer): times read from this clock are corrected by ${clockCorrection(clock) > 0 ? '+' : ''}${clockCorrection(clock)} s before they are written; ` +
    "times given with --finished-at or --started-at are kept as given; set this machine's clock right (NTP)"
  );
}

/** A record with its times as they may be written, and what became of them. */
export interface SettledTimes {
  record: GroupRecord;
  /** The record's time was moved: `record.clockCorrection` says by how much. */
  changed: boolean;
  /** One line each on what was moved, for the report. */
  notices: string[];
  /** A time still ahead of the server's clock, recorded at its now: given so, or kept while this clock was further ahead. */
  warnings: string[];
}

/**
 * The record as it may be written, given the server's clock (undefined: no answer told it, and
 * nothing is changed). A record checked before (`clockCorrection`) is kept as it is, so that a
 * resend is identical. Otherwise a time read from this machine's clock is moved by
 * clockCorrection(); any time then still more than the tolerance ahead of the server's now is
 * recorded at the server's now (a deployment cannot finish, nor start, after now).
 */
export function settleRecordTimes(
  record: GroupRecord,
  clock: ServerClock | undefined,
  localNow: number,
  server: string,
): SettledTimes {
  const unchanged = { record, changed: false, notices: [], warnings: [] };
  if (!clock || record.clockCorrection !== undefined) return unchanged;
  const field = timeField(record);
  const what = field === 'startedAt' ? 'start time' : field === 'at' ? 'time' : 'finish time';
  const given = recordTime(record);
  const now = serverNow(clock, localNow);
  const fromClock = record.timeFromClock === true;
  let time = fromClock ? given + clockCorrection(clock) : given;
  const notices: string[] = [];
  const warnings: string[] = [];
  if (time > now + CLOCK_TOLERANCE_SECONDS) {
    const ahead = time - now;
    time = Math.floor(now);
    if (fromClock) {
      // This clock was moved since the record was made (it waited in the outbox meanwhile).
      warnings.push(
        `the ${what} ${iso(given)}, read from this machine's clock when the record was made, is ahead of the clock of ${server} (the clock was moved since, while the record was kept): it is recorded as ${iso(time)}, the server's now`,
      );
    } else {
      warnings.push(
        `the ${what} ${iso(given)} is ${formatOffset(ahead)} ahead of the clock of ${server} (${iso(now)}): it is recorded as ${iso(time)}, ` +
          `as nothing is written later than the server's now plus ${CLOCK_TOLERANCE_SECONDS / 60} minutes; check the time given (${field === 'startedAt' ? '--started-at' : field === 'at' ? '--at' : '--finished-at'}) and this machine's clock`,
      );
    }
  } else if (time !== given) {
    notices.push(
      `the ${what} ${iso(given)}, read from this machine's clock, is recorded as ${iso(time)} by the clock of ${server}`,
    );
  }
  if (time === given) return unchanged;
  const corrected = { ...record, [field]: time, clockCorrection: time - given } as GroupRecord;
  // A verification's start was read from the same clock as its finish: it moves with it.
  if (corrected.kind === 'verification' && fromClock) corrected.startedAt += time - given;
  return { record: corrected, changed: true, notices, warnings };
}
