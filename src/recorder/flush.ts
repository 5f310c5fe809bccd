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
  /** Refused for good by this run: put apart in outbox/held/ (see `held` of the outcome). */
  held: { record: GroupRecord; grouping: Grouping; failure: Failure }[];
  /** Under --dry-run: the records that would be sent. */
  pending: { record: GroupRecord; grouping: Grouping }[];
  /** Whether this configuration's credentials were used (the target is the configured gateway). */
  configured: boolean;
}

export interface FlushOutcome {
  targets: TargetFlush[];
  quarantined: QuarantinedEntry[];
  dryRun: boolean;
  /** Records waiting for a decision in outbox/held/ (deployctl outbox), this run's included. */
  held: number;
  /** Kept records not even read before the --timeout ran out: still kept, for the next flush. */
  unread: number;
}

/**
 * Records stored without a read-back, confirmed by one read of each group: held ones go, ones
 * another writer replaced go back to the outbox to be sent again. A target out of reach keeps its
 * records for the next time.
 */
async function confirmSent(context: RecorderContext, outbox: Outbox, deadline: number): Promise<void> {
  const { log } = context;
  const byGroup = new Map<string, OutboxEntry[]>();
  for (const entry of (await outbox.list({ sent: true, deadline })).entries) {
    if (entry.kept.sentSequence === undefined) continue;
    pushTo(byGroup, JSON.stringify([entry.kept.target, entry.kept.grouping]), entry);
  }
  for (const group of byGroup.values()) {
    if (Date.now() >= deadline) break;
    const { target, grouping } = group[0]!.kept;
    let backend: Backend | undefined;
    try {
      const leftSeconds = Math.max(0, (deadline - Date.now()) / 1000);
      backend = await openBackendFor(context, { target, timeoutSeconds: leftSeconds });
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

function pushTo<T>(map: Map<string, T[]>, key: string, item: T): void {
  const list = map.get(key);
  if (list) list.push(item);
  else map.set(key, [item]);
}

/** `deployctl flush`: each kept record to its own target, within the budget per target. */
export async function flushAll(context: RecorderContext): Promise<FlushOutcome> {
  const { destination } = context;
  const outbox = new Outbox(destination.stateDir);
  // The --timeout counts from here: reading a large outbox is part of it, and what is not read in
  // time waits for the next flush.
  const deadline = Date.now() + destination.timeoutSeconds * 1000;
  if (!context.dryRun) await confirmSent(context, outbox, deadline);
  const { entries, quarantined, unread } = await outbox.list({
    leaveInPlace: context.dryRun,
    ...(!context.dryRun && { deadline }),
  });
  const byTarget = new Map<string, OutboxEntry[]>();
  for (const entry of entries) pushTo(byTarget, JSON.stringify(entry.kept.target), entry);
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
        held: [],
        pending: group.map((e) => ({ record: e.kept.record, grouping: e.kept.grouping })),
        configured,
      });
      continue;
    }
    let backend: Backend | undefined;
    try {
      const leftSeconds = Math.max(0, (deadline - Date.now()) / 1000);
      backend = await openBackendFor(context, { target, timeoutSeconds: leftSeconds });
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
        held: drained.held.map(({ entry, failure }) => ({
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
        held: [],
        pending: [],
        configured,
      });
    } finally {
      backend?.close();
    }
  }
  const held = await outbox.countHeld().catch(() => 0);
  return { targets, quarantined, dryRun: context.dryRun, held, unread };
}
