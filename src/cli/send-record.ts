import { recordExitCode } from '../core/exit-codes.js';
import type { Grouping, GroupRecord } from '../core/record.js';
import { recordOne } from '../recorder/record-one.js';
import { type CommandContext, recorderContext } from './context.js';
import { renderRecordOutcome, waitNotice } from './render/output.js';

/**
 * Records and reports one record. The recorder never changes the outcome of a deploy: a record
 * that could not be delivered stays kept with a warning, and the exit code is 0 (1 under --strict
 * for record, start and finish; run and step exit with their command's code whatever this returns).
 * A wrapped command's reporter keeps stdout for the command's own output; `onDurable` is called
 * once the record is on disk (or could not be put there).
 */
export async function sendRecord(
  context: CommandContext,
  grouping: Grouping,
  record: GroupRecord | Promise<GroupRecord>,
  { onDurable }: { onDurable?: (kept: boolean) => void } = {},
): Promise<number> {
  const notice = waitNotice(context.settings);
  const outcome = await recordOne(recorderContext(context), grouping, record, {
    ...(onDurable && { onDurable }),
    waitingFor: notice.waitingFor,
    doneWaiting: notice.done,
  });
  renderRecordOutcome(outcome, context.settings, context.reporter);
  return recordExitCode(outcome, context.settings.strict);
}
