import { ExitCode } from '../core/errors.js';
import type { Grouping, GroupRecord } from '../core/record.js';
import { recordOne } from '../recorder/record-one.js';
import { type CommandContext, recorderContext } from './context.js';
import { renderRecordOutcome, waitNotice } from './render/output.js';

/**
 * Records and reports one record. The recorder never changes the outcome of a deploy: a record
 * that could not be delivered stays kept with a warning, and the exit code is 0 (1 under --strict).
 * `toStderr` keeps stdout for a wrapped command's own output; `onDurable` is called once the
 * record is on disk (or could not be put there).
 */
export async function sendRecord(
  context: CommandContext,
  grouping: Grouping,
  record: GroupRecord | Promise<GroupRecord>,
  { toStderr = false, onDurable }: { toStderr?: boolean; onDurable?: (kept: boolean) => void } = {},
): Promise<number> {
  const notice = waitNotice(context.settings);
  const outcome = await recordOne(recorderContext(context), grouping, record, {
    ...(onDurable && { onDurable }),
    waitingFor: notice.waitingFor,
    doneWaiting: notice.done,
  });
  renderRecordOutcome(outcome, context.settings, context.reporter, { toStderr });
  return outcome.delivered || outcome.dryRun ? ExitCode.ok : context.settings.strict ? ExitCode.failure : ExitCode.ok;
}
