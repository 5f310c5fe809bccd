import { ExitCode } from '../../core/errors.js';
import { flushAll } from '../../recorder/flush.js';
import { type CommandContext, recorderContext } from '../context.js';
import { renderFlushOutcome } from '../render/output.js';

/** `deployctl flush`: sends each kept record to its own target; `--dry-run` lists them. */
export async function flushCommand(context: CommandContext): Promise<number> {
  const outcome = await flushAll(recorderContext(context));
  renderFlushOutcome(outcome, context.settings, context.reporter);
  if (outcome.dryRun) return ExitCode.ok;
  return outcome.targets.some((t) => t.remaining > 0) || outcome.quarantined.length > 0
    ? ExitCode.failure
    : ExitCode.ok;
}
