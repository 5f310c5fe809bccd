import { createInterface } from 'node:readline/promises';
import type { CommandContext } from '../context.js';
import { openGateway } from '../deliver.js';
import { DeployctlError, ExitCode, UsageError } from '../errors.js';
import { requireTarget } from '../settings.js';

async function confirm(question: string): Promise<boolean> {
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await prompt.question(question)).trim());
  } finally {
    prompt.close();
  }
}

/** `deployctl delete`: removes a retired service/environment group from the gateway. */
export async function deleteCommand(flags: { yes?: boolean }, { settings, reporter }: CommandContext): Promise<number> {
  const target = requireTarget(settings);
  if (settings.remoteWrite) {
    const { message, hint } = (await import('../backends/remote-write/status.js')).deleteRefusal();
    throw new DeployctlError(message, ExitCode.failure, hint);
  }
  const grouping = { job: settings.job, ...target };
  const gateway = openGateway(settings, reporter);
  const what = `the group of ${target.service} in ${target.environment} (job ${settings.job}) on ${gateway.displayUrl('')}`;
  try {
    if (settings.dryRun) {
      reporter.raw(`DELETE ${gateway.displayUrl((await import('../gateway/client.js')).groupPath(grouping))}\n`);
      return 0;
    }
    if (!flags.yes) {
      if (!process.stdin.isTTY) throw new UsageError(`not deleting ${what} without --yes (no terminal to ask on)`);
      if (!(await confirm(`Delete ${what}? Its counters start again from zero. [y/N] `))) {
        reporter.info('nothing deleted');
        return 1;
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
