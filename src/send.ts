import type { CommandContext } from './context.js';
import { deliver, openGateway, type Delivery } from './deliver.js';
import { DeployctlError, ExitCode, UsageError } from './errors.js';
import type { Gateway } from './gateway/client.js';
import type { Grouping } from './gateway/group-state.js';
import { withGroupLock } from './lock.js';
import type { GroupRecord } from './metrics/apply.js';
import { formatDuration } from './output.js';
import { Outbox } from './outbox.js';

export function describeRecord(record: GroupRecord, grouping: Grouping): string {
  const target = `${grouping.service} in ${grouping.environment}`;
  if (record.kind === 'deployment') return `${record.status} of ${target}`;
  if (record.kind === 'start') return `start of a deployment of ${target}`;
  return `step ${JSON.stringify(record.step)} (${record.status}) of ${target}`;
}

function summaryLine(record: GroupRecord, grouping: Grouping, delivery: Delivery): string {
  if (delivery.duplicate) return `${describeRecord(record, grouping)} was already recorded; not counted again`;
  if (record.kind === 'start') return `recorded ${describeRecord(record, grouping)}: in progress`;
  const details = [
    record.kind === 'deployment' && record.version && `version ${record.version}`,
    delivery.durationSeconds !== undefined && `took ${formatDuration(delivery.durationSeconds)}`,
    delivery.leadTimes && `lead time ${delivery.leadTimes.map(formatDuration).join(', ')}`,
    delivery.timeToRestore !== undefined && `restored after ${formatDuration(delivery.timeToRestore)}`,
  ].filter(Boolean);
  const totals = Object.entries(delivery.totals).map(([status, n]) => `${status} ${n}`).join(', ');
  return `recorded ${describeRecord(record, grouping)}${details.length ? ` (${details.join(', ')})` : ''}${totals ? `; deployments now: ${totals}` : ''}`;
}

const groupKey = (g: Grouping) => JSON.stringify([g.job, g.service, g.environment]);

/** An error that says the gateway as a whole is out of reach, not that it refused one group. */
function gatewayUnreachable(error: unknown): boolean {
  return error instanceof DeployctlError && 'retryable' in error && error.retryable === true && !('status' in error && error.status);
}

export interface FlushResult {
  sent: number;
  remaining: number;
  corrupt: number;
  /** Groups whose kept records could not all be sent: newer records for them wait behind. */
  blocked: Set<string>;
}

/**
 * Sends the records kept in the outbox, oldest first, each under its group's lock. A group whose
 * record fails keeps the rest of its records in order; an unreachable gateway stops the flush.
 */
export async function flushOutbox(
  { settings, reporter, now }: CommandContext,
  gateway: Gateway,
  outbox: Outbox,
  { announce }: { announce: boolean },
): Promise<FlushResult> {
  const { entries, corrupt } = await outbox.list();
  for (const entry of corrupt) {
    reporter.warn(`kept record ${entry.file} is unreadable (${entry.problem}); moved to ${entry.movedTo} — nothing was sent for it`);
  }
  const result: FlushResult = { sent: 0, remaining: 0, corrupt: corrupt.length, blocked: new Set() };
  let unreachable = false;
  for (const entry of entries) {
    const { grouping, record } = entry.kept;
    if (unreachable || result.blocked.has(groupKey(grouping))) {
      result.remaining += 1;
      result.blocked.add(groupKey(grouping));
      continue;
    }
    try {
      const delivery = await withGroupLock(settings.stateDir, grouping, Math.max(0, gateway.remainingMs()), async () => {
        if (!(await outbox.holds(entry))) return undefined; // a concurrent flush sent it
        const sent = await deliver(gateway, grouping, record, { dryRun: false, now, debug: reporter.debug });
        await outbox.remove(entry);
        return sent;
      });
      if (delivery) {
        result.sent += 1;
        if (announce) reporter.info(`sent kept ${summaryLine(record, grouping, delivery).replace(/^recorded /, '')}`);
      }
    } catch (error) {
      if (!(error instanceof DeployctlError)) throw error;
      result.remaining += 1;
      result.blocked.add(groupKey(grouping));
      unreachable = gatewayUnreachable(error);
      reporter.warn(`kept ${describeRecord(record, grouping)} could not be sent: ${error.message}`);
    }
  }
  return result;
}

/**
 * Sends one record to its group and reports the result. What the outbox kept goes first. The
 * recorder never changes the outcome of a deploy: when the gateway fails, the record is kept in
 * the outbox with a warning, and the exit code is 0 (1 under --strict).
 * `toStderr` keeps stdout for a wrapped command's own output.
 */
export async function sendRecord(
  context: CommandContext,
  grouping: Grouping,
  record: GroupRecord,
  { toStderr = false }: { toStderr?: boolean } = {},
): Promise<number> {
  const { settings, reporter, now } = context;
  if (settings.remoteWrite) {
    const { sendToRemoteWrite } = await import('./backends/remote-write/send.js');
    return sendToRemoteWrite(context, grouping, record, { toStderr });
  }
  const gateway = openGateway(settings, reporter);
  const say = toStderr ? (message: string) => !settings.quiet && process.stderr.write(`deployctl: ${message}\n`) : reporter.info;
  const outbox = new Outbox(settings.stateDir);
  try {
    if (settings.dryRun) {
      const delivery = await deliver(gateway, grouping, record, { dryRun: true, now, warn: reporter.warn, debug: reporter.debug });
      if (settings.json) reporter.json({ dryRun: true, url: delivery.url, exposition: delivery.exposition });
      else if (toStderr) process.stderr.write(`POST ${delivery.url}\n\n${delivery.exposition}`);
      else reporter.raw(`POST ${delivery.url}\n\n${delivery.exposition}`);
      return ExitCode.ok;
    }

    const flushed = await flushOutbox(context, gateway, outbox, { announce: false });
    if (flushed.sent > 0) reporter.debug(`sent ${flushed.sent} kept record(s) first`);
    if (flushed.blocked.has(groupKey(grouping))) {
      throw new DeployctlError('older records of this group are still kept and go first');
    }
    const delivery = await withGroupLock(settings.stateDir, grouping, Math.max(0, gateway.remainingMs()), () =>
      deliver(gateway, grouping, record, { dryRun: false, now, debug: reporter.debug }),
    );
    for (const notice of delivery.notices) if (!settings.quiet) process.stderr.write(`deployctl: note: ${notice}\n`);
    if (settings.json) {
      const { families: _families, exposition: _exposition, ...result } = delivery;
      const output: Record<string, unknown> = { recorded: !delivery.duplicate, ...grouping, ...record, ...result };
      delete output.history;
      if (toStderr) process.stderr.write(`${JSON.stringify(output)}\n`);
      else reporter.json(output);
    } else {
      say(summaryLine(record, grouping, delivery));
    }
    return ExitCode.ok;
  } catch (error) {
    if (error instanceof UsageError || !(error instanceof DeployctlError)) throw error;
    if (settings.dryRun) {
      reporter.warn(`${error.message}`);
      return settings.strict ? ExitCode.failure : ExitCode.ok;
    }
    try {
      await outbox.keep(grouping, record, error.message, now());
      reporter.warn(
        `${describeRecord(record, grouping)} is not on the gateway yet: ${error.message}. It is kept in ${outbox.dir} and sent by the next deployctl command, or now with: deployctl flush`,
      );
    } catch (keepError) {
      reporter.warn(`${describeRecord(record, grouping)} was not recorded: ${error.message}; and it could not be kept: ${(keepError as Error).message}`);
    }
    if (error.hint) reporter.warn(error.hint);
    return settings.strict ? ExitCode.failure : ExitCode.ok;
  } finally {
    gateway.close();
  }
}
