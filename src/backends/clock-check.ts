import { clockWarning, type ServerClock, settleRecordTimes } from '../core/clock.js';
import type { Log } from '../core/log.js';
import type { GroupRecord } from '../core/record.js';

/** One delivery's check of its record's times against the server's clock (see core/clock.ts). */
export interface ClockCheck {
  /** The record as it may be written; the first call decides, later ones (retries) get the same. */
  settle(record: GroupRecord): Promise<GroupRecord>;
  /** What was moved, for the report. */
  readonly notices: string[];
  /** The record as written, when its times were corrected. */
  readonly corrected: GroupRecord | undefined;
}

/** The servers this process has warned about this machine's clock against: once each per command. */
const warnedAbout = new Set<string>();

/**
 * Checks of records' times against a backend's clock, as its client measured it from the Date of
 * the first answer it got (no request of its own). The warning about this machine's clock is given
 * once per server and command; a corrected record is kept (`fix`) before it is written, so that a
 * resend is identical. `server` names the backend in messages ("the gateway at http://…").
 */
export function clockChecks(
  clock: () => ServerClock | undefined,
  server: string,
  log: Log,
): (fix?: (record: GroupRecord) => Promise<void>) => ClockCheck {
  return (fix) => {
    let settled: Promise<GroupRecord> | undefined;
    const notices: string[] = [];
    let corrected: GroupRecord | undefined;
    const decide = async (record: GroupRecord) => {
      const warning = warnedAbout.has(server) ? undefined : clockWarning(clock(), server);
      if (warning) {
        warnedAbout.add(server);
        log.warn(warning);
      }
      const result = settleRecordTimes(record, clock(), Date.now() / 1000, server);
      for (const message of result.warnings) log.warn(message);
      if (!result.changed) return record;
      notices.push(...result.notices);
      await fix?.(result.record);
      corrected = result.record;
      return result.record;
    };
    return {
      settle: (record) => {
        settled ??= decide(record);
        return settled;
      },
      notices,
      get corrected() {
        return corrected;
      },
    };
  };
}
