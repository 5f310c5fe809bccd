import type { Backend } from '../backends/backend.js';
import { type Grouping, type GroupRecord, sameTarget, type Target } from '../core/record.js';
import { drain, settleSent } from './backlog.js';
import { asFailure, type Failure, openBackendFor, type RecorderContext } from './context.js';
import { Outbox, type OutboxEntry, type QuarantinedEntry } from './outbox.js';

interface TargetFlush {
  target: Target;
  sent: number;
  remaining: number;
  failures: { record: GroupRecord; grouping: Grouping; failure: Failure }[];
  /** Under --dry-run: the records that would be sent. */
  pending: { record: GroupRecord; grouping: Grouping }[];
  /** Whether this configuration's credentials were used (the target is the configured gateway). */
  configured: boolean;
}

export interface FlushOutcome {
  targets: TargetFlush[];
  quarantined: QuarantinedEntry[];
  dryRun: boolean;
}

/**
 * Records stored without a read-back, confirmed by one read of each group: held ones go, ones
 * another writer replaced go back to the outbox to be sent again. A target out of reach keeps its
 * records for the next time.
 */
async function confirmSent(context: RecorderContext, outbox: Outbox): Promise<void> {
  const { log } = context;
  const byGroup = new Map<string, OutboxEntry[]>();
  for (const entry of (await outbox.list({ sent: true })).entries) {
    if (entry.kept.sentSequence === undefined) continue;
    const key = JSON.stringify([entry.kept.target, entry.kept.grouping]);
    byGroup.set(key, [...(byGroup.get(key) ?? []), entry]);
  }
  for (const group of byGroup.values()) {
    const { target, grouping } = group[0]!.kept;
    let backend: Backend | undefined;
    try {
      backend = await openBackendFor(context, { target });
      const confirmed = await backend.confirm?.(
        grouping,
        group.map((e) => ({ id: e.kept.record.id, sequence: e.kept.sentSequence! })),
      );
      await settleSent(outbox, group, confirmed);
    } catch (error) {
      log.debug(`could not confirm records sent to ${target.url}: ${asFailure(error).message}`);
    } finally {
      backend?.close();
    }
  }
}

/** `deployctl flush`: each kept record to its own target, within the budget per target. */
export async function flushAll(context: RecorderContext): Promise<FlushOutcome> {
  const { destination } = context;
  const outbox = new Outbox(destination.stateDir);
  if (!context.dryRun) await confirmSent(context, outbox);
  const { entries, quarantined } = await outbox.list({ leaveInPlace: context.dryRun });
  const byTarget = new Map<string, OutboxEntry[]>();
  for (const entry of entries) {
    const key = JSON.stringify(entry.kept.target);
    byTarget.set(key, [...(byTarget.get(key) ?? []), entry]);
  }
  const targets: TargetFlush[] = [];
  for (const group of byTarget.values()) {
    const target = group[0]!.kept.target;
    const configured = sameTarget(target, destination.target);
    if (context.dryRun) {
      targets.push({
        target,
        sent: 0,
        remaining: group.length,
        failures: [],
        pending: group.map((e) => ({ record: e.kept.record, grouping: e.kept.grouping })),
        configured,
      });
      continue;
    }
    let backend: Backend | undefined;
    try {
      backend = await openBackendFor(context, { target });
      const drained = await drain(context, backend, outbox, group, { readBack: true });
      targets.push({
        target,
        sent: drained.sent.length,
        remaining: drained.failed.length + drained.untried.length,
        failures: drained.failed.map(({ entry, failure }) => ({
          record: entry.kept.record,
          grouping: entry.kept.grouping,
          failure,
        })),
        pending: [],
        configured,
      });
    } catch (error) {
      const failure = asFailure(error);
      targets.push({
        target,
        sent: 0,
        remaining: group.length,
        failures: group.map((e) => ({ record: e.kept.record, grouping: e.kept.grouping, failure })),
        pending: [],
        configured,
      });
    } finally {
      backend?.close();
    }
  }
  return { targets, quarantined, dryRun: context.dryRun };
}
