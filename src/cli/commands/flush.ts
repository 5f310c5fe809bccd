import { flushExitCode } from '../../core/exit-codes.js';
import { flushAll } from '../../recorder/flush.js';
import { type CommandContext, recorderContext } from '../context.js';
import { renderFlushOutcome } from '../render/output.js';

/** `deployctl flush`: sends each kept record to its own target; `--dry-run` lists them. */
export async function flushCommand(context: CommandContext): Promise<number> {
  const outcome = await flushAll(recorderContext(context));
  renderFlushOutcome(outcome, context.settings, context.reporter);
  return flushExitCode({
    dryRun: outcome.dryRun,
    // Records held for a decision are not retried: they do not fail a flush (deployctl outbox).
    stillKept: outcome.targets.reduce((n, t) => n + t.remaining, 0) + outcome.unread,
    quarantined: outcome.quarantined.length,
  });
}
