import { DeployctlError, ExitCode, UsageError } from './errors.js';
import { deliver, openGateway, type Delivery } from './deliver.js';
import type { Grouping } from './gateway/group-state.js';
import type { GroupRecord } from './metrics/apply.js';
import { formatDuration } from './output.js';
import type { CommandContext } from './context.js';

function describe(record: GroupRecord, grouping: Grouping): string {
  const target = `${grouping.service} in ${grouping.environment}`;
  if (record.kind === 'deployment') return `${record.status} of ${target}`;
  if (record.kind === 'start') return `start of a deployment of ${target}`;
  return `step ${JSON.stringify(record.step)} (${record.status}) of ${target}`;
}

function summaryLine(record: GroupRecord, grouping: Grouping, delivery: Delivery): string {
  if (delivery.duplicate) return `${describe(record, grouping)} was already recorded; not counted again`;
  if (record.kind === 'start') return `recorded ${describe(record, grouping)}: in progress`;
  const details = [
    record.kind === 'deployment' && record.version && `version ${record.version}`,
    delivery.durationSeconds !== undefined && `took ${formatDuration(delivery.durationSeconds)}`,
    delivery.leadTimes && `lead time ${delivery.leadTimes.map(formatDuration).join(', ')}`,
    delivery.timeToRestore !== undefined && `restored after ${formatDuration(delivery.timeToRestore)}`,
  ].filter(Boolean);
  const totals = Object.entries(delivery.totals).map(([status, n]) => `${status} ${n}`).join(', ');
  return `recorded ${describe(record, grouping)}${details.length ? ` (${details.join(', ')})` : ''}${totals ? `; deployments now: ${totals}` : ''}`;
}

/**
 * Sends one record to its group and reports the result. The recorder never changes the outcome
 * of a deploy: a gateway failure is a warning and exit code 0, or 1 under --strict.
 * `toStderr` keeps stdout for a wrapped command's own output.
 */
export async function sendRecord(
  { settings, reporter, now }: CommandContext,
  grouping: Grouping,
  record: GroupRecord,
  { toStderr = false }: { toStderr?: boolean } = {},
): Promise<number> {
  const gateway = openGateway(settings, reporter);
  const say = toStderr ? (message: string) => !settings.quiet && process.stderr.write(`deployctl: ${message}\n`) : reporter.info;
  try {
    const delivery = await deliver(gateway, grouping, record, { dryRun: settings.dryRun, now, warn: reporter.warn });
    for (const notice of delivery.notices) if (!settings.quiet) process.stderr.write(`deployctl: note: ${notice}\n`);
    if (settings.dryRun) {
      if (settings.json) reporter.json({ dryRun: true, url: delivery.url, exposition: delivery.exposition });
      else if (toStderr) process.stderr.write(`POST ${delivery.url}\n\n${delivery.exposition}`);
      else reporter.raw(`POST ${delivery.url}\n\n${delivery.exposition}`);
      return ExitCode.ok;
    }
    if (settings.json) {
      const { families: _families, exposition: _exposition, ...result } = delivery;
      const output = { recorded: !delivery.duplicate, ...grouping, ...record, ...result };
      if ('history' in output) delete output.history;
      if (toStderr) process.stderr.write(`${JSON.stringify(output)}\n`);
      else reporter.json(output);
    } else {
      say(summaryLine(record, grouping, delivery));
    }
    return ExitCode.ok;
  } catch (error) {
    if (error instanceof UsageError || !(error instanceof DeployctlError)) throw error;
    reporter.warn(`${describe(record, grouping)} was not recorded: ${error.message}`);
    if (error.hint) reporter.warn(error.hint);
    return settings.strict ? ExitCode.failure : ExitCode.ok;
  } finally {
    gateway.close();
  }
}
