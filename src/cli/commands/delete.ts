import { createInterface } from 'node:readline/promises';
import { openReader } from '../../backends/index.js';
import { UsageError } from '../../core/errors.js';
import type { Grouping } from '../../core/record.js';
import type { CommandContext } from '../context.js';
import { requireTarget } from '../settings.js';

/** Asks on the terminal; Ctrl-C (or the end of input) is a "no" that says it was interrupted. */
export async function confirm(question: string): Promise<'yes' | 'no' | 'interrupted'> {
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  const interrupted = new Promise<'interrupted'>((resolve) => {
    prompt.once('SIGINT', () => resolve('interrupted'));
    prompt.once('close', () => resolve('interrupted'));
  });
  const answered = prompt
    .question(question)
    .then((answer) => (/^y(es)?$/i.test(answer.trim()) ? ('yes' as const) : ('no' as const)))
    .catch(() => 'interrupted' as const);
  try {
    const answer = await Promise.race([answered, interrupted]);
    if (answer === 'interrupted') process.stderr.write('\n'); // the prompt's line ends
    return answer;
  } finally {
    prompt.close();
  }
}

export interface DeleteView {
  kind: 'delete';
  /** What `--dry-run` would send. */
  plan?: string;
  deleted?: Grouping;
  /** The group as the question and the answer name it. */
  what: string;
  /** The question was answered no, or interrupted (Ctrl-C, end of input). */
  declined?: 'no' | 'interrupted';
}

/** `deployctl delete`: removes a retired service/environment group from the backend, after asking. */
export async function deleteCommand(
  flags: { yes?: boolean },
  { settings, destination, reporter }: CommandContext,
): Promise<DeleteView> {
  const target = requireTarget(settings);
  const grouping = { job: settings.job, ...target };
  const reader = await openReader(destination, reporter);
  try {
    if (settings.dryRun) return { kind: 'delete', what: '', plan: reader.deletePlan(grouping) };
    const { what, remove } = await reader.findForDelete(grouping);
    if (!flags.yes) {
      if (!process.stdin.isTTY) throw new UsageError(`not deleting ${what} without --yes (no terminal to ask on)`);
      const answer = await confirm(`Delete ${what}? Its counters start again from zero. [y/N] `);
      if (answer !== 'yes') return { kind: 'delete', what, declined: answer };
    }
    await remove();
    return { kind: 'delete', what, deleted: grouping };
  } finally {
    reader.close();
  }
}
