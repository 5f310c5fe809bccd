import type { Backend, Delivered, DeliverOptions } from '../backends/backend.js';
import { DeployctlError, GatewayError } from '../core/errors.js';
import type { Grouping, GroupRecord } from '../core/record.js';
import { asFailure, type Failure, openBackendFor, type RecorderContext } from './context.js';
import { withGroupLock } from './lock.js';
import type { Outbox, OutboxEntry, QuarantinedEntry } from './outbox.js';

/** What became of kept records sent alongside (or instead of) a new one. */
export interface Backlog {
  sent: number;
  /** Still kept for this target after this run. */
  remaining: number;
  quarantined: QuarantinedEntry[];
  /** Kept for other targets: only `deployctl flush` sends those. */
  otherTargets: number;
}

/** How many kept records of one group or target a new record reads at most. */
export const BACKLOG_READ_LIMIT = 500;

const groupKey = (g: Grouping) => JSON.stringify([g.job, g.service, g.environment]);

/** An error that says the backend as a whole is out of reach, not that it refused one record. */
function unreachable(error: unknown): boolean {
  return (
    error instanceof DeployctlError &&
    'retryable' in error &&
    error.retryable === true &&
    !('status' in error && error.status)
  );
}

/** A refusal that the same record sent to the same URL will always get (see FailureKind). */
function refusedForGood(error: unknown): boolean {
  return error instanceof GatewayError && error.kind === 'permanent';
}

/**
 * Delivers a kept record; what the backend settles before sending (remote-write's samples) is
 * kept with it. Once delivered, the file goes, or, when the backend did not read the record back,
 * waits in `outbox/sent/` until a later read of its group shows it.
 */
export async function deliverKept(
  backend: Backend,
  outbox: Outbox,
  entry: OutboxEntry,
  options: DeliverOptions = {},
): Promise<Delivered> {
  let delivered: Delivered;
  try {
    delivered = await backend.deliver(
      entry.kept.grouping,
      entry.kept.record,
      (fixed) => outbox.update(entry, fixed),
      options,
    );
  } catch (error) {
    if (refusedForGood(error)) {
      // Sending it again to this URL cannot help: it waits apart for a decision (deployctl outbox).
      await outbox.hold(entry, (error as Error).message, Date.now() / 1000).catch(() => undefined);
    }
    throw error;
  }
  if (delivered.unconfirmed && delivered.sequence !== undefined) await outbox.markSent(entry, delivered.sequence);
  else await outbox.remove(entry);
  return delivered;
}

/**
 * Settles the records of a group that were stored without a read-back, by what the latest read
 * said: held ones (and ones that cannot be told, see `confirmation`) go; ones another writer
 * replaced go back to the outbox and are returned, to be sent again.
 */
export async function settleSent(
  outbox: Outbox,
  sent: OutboxEntry[],
  confirmed: Record<string, string> = {},
): Promise<OutboxEntry[]> {
  const replaced: OutboxEntry[] = [];
  for (const entry of sent) {
    const verdict = confirmed[entry.kept.record.id];
    if (verdict === undefined) continue;
    if (verdict === 'replaced') {
      await outbox.unsend(entry);
      replaced.push(entry);
    } else {
      await outbox.remove(entry);
    }
  }
  return replaced;
}

export interface DrainResult {
  sent: OutboxEntry[];
  failed: { entry: OutboxEntry; failure: Failure }[];
  /** Refused for good: put apart in outbox/held/, waiting for a decision. */
  held: { entry: OutboxEntry; failure: Failure }[];
  /** Not tried: out of time or the backend unreachable. */
  untried: OutboxEntry[];
}

/**
 * Sends one group's kept records, oldest first, while its lock is held: several in one write where
 * the backend merges writes (deliverMany), at most `maxRecords` at a time, each write's files
 * removed before the next write leaves; a write refused for another reason than the backend being
 * out of reach is tried again record by record, so that one bad record holds up only itself.
 */
async function drainGroup(
  backend: Backend,
  outbox: Outbox,
  group: OutboxEntry[],
  result: DrainResult,
  options: DeliverOptions,
): Promise<boolean> {
  const size = backend.maxRecords ?? 1;
  if (!backend.deliverMany || size < 2 || group.length < 2)
    return drainOneByOne(backend, outbox, group, result, options);
  for (let start = 0; start < group.length; start += size) {
    if (backend.remainingMs() <= 50) {
      result.untried.push(...group.slice(start));
      return false;
    }
    const chunk: OutboxEntry[] = [];
    for (const entry of group.slice(start, start + size)) if (await outbox.holds(entry)) chunk.push(entry);
    if (chunk.length === 0) continue;
    try {
      await backend.deliverMany(
        chunk[0]!.kept.grouping,
        chunk.map((entry) => ({ record: entry.kept.record, fix: (fixed: GroupRecord) => outbox.update(entry, fixed) })),
        options,
      );
    } catch (error) {
      if (unreachable(error) || !(error instanceof DeployctlError)) {
        result.failed.push(...chunk.map((entry) => ({ entry, failure: asFailure(error) })));
        result.untried.push(...group.slice(start + size));
        return false;
      }
      if (!(await drainOneByOne(backend, outbox, chunk, result, options))) {
        result.untried.push(...group.slice(start + size));
        return false;
      }
      continue;
    }
    for (const entry of chunk) await outbox.remove(entry);
    result.sent.push(...chunk);
  }
  return true;
}

/** Sends kept records of one group one at a time, oldest first. */
async function drainOneByOne(
  backend: Backend,
  outbox: Outbox,
  group: OutboxEntry[],
  result: DrainResult,
  options: DeliverOptions,
): Promise<boolean> {
  for (const [index, entry] of group.entries()) {
    if (backend.remainingMs() <= 50) {
      result.untried.push(...group.slice(index));
      return false;
    }
    if (!(await outbox.holds(entry))) continue; // a concurrent process sent it
    try {
      await deliverKept(backend, outbox, entry, options);
      result.sent.push(entry);
    } catch (error) {
      (refusedForGood(error) ? result.held : result.failed).push({ entry, failure: asFailure(error) });
      if (unreachable(error) || !(error instanceof DeployctlError)) {
        result.untried.push(...group.slice(index + 1));
        return false;
      }
    }
  }
  return true;
}

/**
 * Sends kept records of one target, oldest first, each group under its lock (unless the caller
 * holds it already: `locked`). Records in flight to a live process are left to it. An unreachable
 * gateway or a spent budget stops the drain; a record the gateway refuses stays kept and the next
 * one is tried.
 */
export async function drain(
  context: RecorderContext,
  backend: Backend,
  outbox: Outbox,
  entries: OutboxEntry[],
  { locked = false, readBack = false }: { locked?: boolean; readBack?: boolean } = {},
): Promise<DrainResult> {
  const { destination, now } = context;
  const result: DrainResult = { sent: [], failed: [], held: [], untried: [] };
  const byGroup = new Map<string, OutboxEntry[]>();
  for (const entry of entries) {
    if (outbox.inFlight(entry, now())) continue;
    const key = groupKey(entry.kept.grouping);
    const group = byGroup.get(key);
    if (group) group.push(entry);
    else byGroup.set(key, [entry]);
  }
  let going = true;
  for (const group of byGroup.values()) {
    if (!going || backend.remainingMs() <= 50) {
      result.untried.push(...group);
      continue;
    }
    if (locked) {
      going = await drainGroup(backend, outbox, group, result, { readBack });
      continue;
    }
    try {
      going = await withGroupLock(
        destination.stateDir,
        group[0]!.kept.grouping,
        Math.max(0, backend.remainingMs()),
        () => drainGroup(backend, outbox, group, result, { readBack }),
      );
    } catch (error) {
      // The lock could not be had in time: the group's records wait for the next run.
      result.failed.push(...group.map((entry) => ({ entry, failure: asFailure(error) })));
    }
  }
  return result;
}

/**
 * Other groups' kept records for this target, with what is left of the budget (at most a second),
 * then what is still kept: a short list of this target's files is read, to leave out records in
 * flight to another live process.
 */
export async function sendOthersAndCount(
  context: RecorderContext,
  outbox: Outbox,
  grouping: Grouping,
  backlog: Backlog,
  leftMs: number,
): Promise<void> {
  const { destination, log, now } = context;
  const target = destination.target;
  if (leftMs > 100) {
    const others = await openBackendFor(context, { timeoutSeconds: Math.min(1, leftMs / 1000) });
    try {
      const listed = await outbox.list({ target, limit: BACKLOG_READ_LIMIT });
      backlog.quarantined.push(...listed.quarantined);
      const rest = listed.entries.filter((e) => groupKey(e.kept.grouping) !== groupKey(grouping));
      if (rest.length > 0) backlog.sent += (await drain(context, others, outbox, rest)).sent.length;
    } catch (error) {
      log.debug(`could not send other kept records: ${asFailure(error).message}`);
    } finally {
      others.close();
    }
  }
  const counted = await outbox.countByTarget(target);
  backlog.remaining = counted.mine;
  if (counted.mine <= BACKLOG_READ_LIMIT) {
    const mine = await outbox.list({ target });
    backlog.quarantined.push(...mine.quarantined);
    backlog.remaining = mine.entries.filter((entry) => !outbox.inFlight(entry, now())).length;
  }
}
