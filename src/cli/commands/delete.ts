import { createInterface } from 'node:readline/promises';
import { openGateway } from '../../backends/pushgateway/client.js';
import { DeployctlError, ExitCode, UsageError } from '../../core/errors.js';
import type { CommandContext } from '../context.js';
import { requireTarget } from '../settings.js';

/** Exit code of a prompt answered with Ctrl-C: 128 + SIGINT, as a shell reports it. */
const INTERRUPTED = 130;

/** Asks on the terminal; Ctrl-C (or the end of input) is a "no" that says it was interrupted. */
async function confirm(question: string): Promise<'yes' | 'no' | 'interrupted'> {
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
    return await Promise.race([answered, interrupted]);
  } finally {
    prompt.close();
  }
}

/** `deployctl delete`: removes a retired service/environment group from the gateway. */
export async function deleteCommand(flags: { yes?: boolean }, { settings, reporter }: CommandContext): Promise<number> {
  const target = requireTarget(settings);
  if (settings.remoteWrite) {
    const { message, hint } = (await import('../../backends/remote-write/status.js')).deleteRefusal();
    throw new DeployctlError(message, ExitCode.failure, hint);
  }
  const grouping = { job: settings.job, ...target };
  const gateway = openGateway(settings, reporter);
  const what = `the group of ${target.service} in ${target.environment} (job ${settings.job}) on ${gateway.displayUrl('')}`;
  try {
    if (settings.dryRun) {
      reporter.raw(
        `DELETE ${gateway.displayUrl((await import('../../backends/pushgateway/client.js')).groupPath(grouping))}\n`,
      );
      return 0;
    }
    const groups = await gateway.readAllGroups();
    const exists = groups.some(
      ({ labels }) =>
        labels.job === grouping.job &&
        labels.service === grouping.service &&
        labels.environment === grouping.environment,
    );
    if (!exists) {
      const sameService = groups
        .filter(({ labels }) => labels.job === grouping.job && labels.service === grouping.service)
        .map(({ labels }) => labels.environment);
      throw new DeployctlError(
        `there is no group of ${target.service} in ${target.environment} (job ${settings.job}) on ${gateway.displayUrl('')}: nothing deleted`,
        1,
        sameService.length
          ? `${target.service} has groups in: ${sameService.map((e) => JSON.stringify(e)).join(', ')}`
          : 'deployctl status lists the groups the gateway holds',
      );
    }
    if (!flags.yes) {
      if (!process.stdin.isTTY) throw new UsageError(`not deleting ${what} without --yes (no terminal to ask on)`);
      const answer = await confirm(`Delete ${what}? Its counters start again from zero. [y/N] `);
      if (answer !== 'yes') {
        if (answer === 'interrupted') process.stderr.write('\n');
        reporter.info('nothing deleted');
        return answer === 'interrupted' ? INTERRUPTED : 1;
      }
    }
    await gateway.deleteGroup(grouping);
    if (settings.json) reporter.json({ deleted: true, ...grouping });
    else reporter.info(`deleted ${what}`);
    return 0;
  } finally {
    gateway.close();
  }
}
