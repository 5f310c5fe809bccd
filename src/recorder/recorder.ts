import type { Backend, Delivered, DeliverOptions, Destination, Plan } from '../backends/backend.js';
import { openBackend } from '../backends/index.js';
import { DeployctlError } from '../core/errors.js';
import type { Log } from '../core/log.js';
import { type Grouping, type GroupRecord, sameTarget, type Target } from '../core/record.js';
import { acquireGroupLock, type GroupLock, withGroupLock } from './lock.js';
import { Outbox, type OutboxEntry, type QuarantinedEntry } from './outbox.js';

/** What the recorder needs of the command that records: where to, where to say things, a clock. */
export interface RecorderContext {
  destination: Destination;
  log: Log;
  /** Unix seconds. */
  now: () => number;
  /** Show what would be sent; send and keep nothing. */
  dryRun: boolean;
}

export interface Failure {
  message: string;
  hint?: string;
}

export function asFailure(error: unknown): Failure {
  if (error instanceof DeployctlError) return { message: error.message, ...(error.hint && { hint: error.hint }) };
  return { message: `unexpected error: ${(error as Error)?.message ?? String(error)}` };
}

/** What became of kept records sent alongside (or instead of) a new one. */
export interface Backlog {
  sent: number;
  /** Still kept for this target after this run. */
  remaining: number;
  quarantined: QuarantinedEntry[];
  /** Kept for other targets: only `deployctl flush` sends those. */
  otherTargets: number;
}

/** The result of recording one record, as data; output.ts renders it. */
export interface RecordOutcome {
  record: GroupRecord;
  grouping: Grouping;
  target: Target;
  /** On the backend now: sent by this process, found there already, or sent by a concurrent deployctl. */
  delivered: boolean;
  delivery?: Delivered;
  /** Another deployctl on this machine sent this record while this one waited for the group. */
  sentByAnother?: boolean;
  /** The outbox file holding the record until it is delivered. */
  keptIn?: string;
  /** Why the record could not be written ahead to the outbox. */
  notKept?: string;
  failure?: Failure;
  backlog: Backlog;
  dryRun?: Plan;
}

/** How long a record still being made may hold its group's lock and read (see recordOne). */
const EARLY_MS = 250;

/** How many kept records of one group or target a new record reads at most. */
const BACKLOG_READ_LIMIT = 500;

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

/**
 * Delivers a kept record; what the backend settles before sending (remote-write's samples) is
 * kept with it. Once delivered, the file goes, or, when the backend did not read the record back,
 * waits in `outbox/sent/` until a later read of its group shows it.
 */
async function deliverKept(
  backend: Backend,
  outbox: Outbox,
  entry: OutboxEntry,
  options: DeliverOptions = {},
): Promise<Delivered> {
  const delivered = await backend.deliver(
    entry.kept.grouping,
    entry.kept.record,
    (fixed) => outbox.update(entry, fixed),
    options,
  );
  if (delivered.unconfirmed && delivered.sequence !== undefined) await outbox.markSent(entry, delivered.sequence);
  else await outbox.remove(entry);
  return delivered;
}

/**
 * Settles the records of a group that were stored without a read-back, by what the latest read
 * said: held ones (and ones that cannot be told, see `confirmation`) go; ones another writer
 * replaced go back to the outbox and are returned, to be sent again.
 */
async function settleSent(
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
  /** Not tried: out of time or the backend unreachable. */
  untried: OutboxEntry[];
}

/** Sends one group's kept records, oldest first, while its lock is held. */
async function drainGroup(
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
      result.failed.push({ entry, failure: asFailure(error) });
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
async function drain(
  context: RecorderContext,
  backend: Backend,
  outbox: Outbox,
  entries: OutboxEntry[],
  { locked = false, readBack = false }: { locked?: boolean; readBack?: boolean } = {},
): Promise<DrainResult> {
  const { destination, now } = context;
  const result: DrainResult = { sent: [], failed: [], untried: [] };
  const byGroup = new Map<string, OutboxEntry[]>();
  for (const entry of entries) {
    if (outbox.inFlight(entry, now())) continue;
    const key = groupKey(entry.kept.grouping);
    byGroup.set(key, [...(byGroup.get(key) ?? []), entry]);
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
 * Under the group's lock: sends the group's older kept records first (within half the budget),
 * then this one. Records stored earlier without a read-back are confirmed by the read this
 * delivery makes anyway; this record in turn waits in outbox/sent/ for the next one (or flush).
 * Undefined when another deployctl sent this record meanwhile.
 */
async function deliverOwn(
  context: RecorderContext,
  main: Backend,
  outbox: Outbox,
  grouping: Grouping,
  record: GroupRecord,
  ownWritten: Promise<OutboxEntry | undefined>,
  backlog: Backlog,
  notice: { waitingFor: (what: string) => void },
  forgetRead: (() => void) | undefined,
): Promise<Delivered | undefined> {
  const { destination, log } = context;
  const target = main.target;
  const [older, sent] = await Promise.all([
    outbox.list({ target, grouping, limit: BACKLOG_READ_LIMIT }).then(
      (listed) => {
        backlog.quarantined.push(...listed.quarantined);
        return listed.entries.filter((entry) => entry.kept.record.id !== record.id);
      },
      (error: unknown) => {
        log.debug(`could not read the outbox: ${asFailure(error).message}`);
        return [];
      },
    ),
    outbox.list({ target, grouping, sent: true, limit: BACKLOG_READ_LIMIT }).then(
      (listed) => listed.entries.filter((e) => e.kept.sentSequence !== undefined),
      () => [],
    ),
  ]);
  if (older.length > 0) {
    forgetRead?.(); // read before the backlog changed the group
    notice.waitingFor(
      `the gateway at ${target.url} to take ${older.length} record(s) kept earlier (at most ${Math.round(destination.timeoutSeconds / 2)}s)`,
    );
    const backlogBackend = await openBackend(destination, log, { timeoutSeconds: destination.timeoutSeconds / 2 });
    try {
      const drained = await drain(context, backlogBackend, outbox, older, { locked: true });
      backlog.sent += drained.sent.length;
    } finally {
      backlogBackend.close();
    }
  }
  const own = await ownWritten;
  if (own && !(await outbox.holds(own))) return undefined;
  notice.waitingFor(
    `the gateway at ${target.url} (retrying for up to ${Math.round(main.remainingMs() / 1000)}s more, --timeout)`,
  );
  if (!own) return main.deliver(grouping, record); // nothing on disk to confirm later: read back now
  const confirm = sent.map((e) => ({ id: e.kept.record.id, sequence: e.kept.sentSequence! }));
  const delivered = await deliverKept(main, outbox, own, { readBack: false, confirm });
  const replaced = await settleSent(outbox, sent, delivered.confirmed);
  if (replaced.length > 0) {
    log.warn(
      `${replaced.length} earlier record(s) of ${grouping.service} in ${grouping.environment} were overwritten on the gateway by another writer; sending them again`,
    );
    const again = await drain(context, main, outbox, replaced, { locked: true });
    backlog.sent += again.sent.length;
  }
  return delivered;
}

/** Hooks for the one who reports: the record is on disk (or could not be put there); a wait begins; waiting is over. */
export interface RecordHooks {
  onDurable?: (kept: boolean) => void;
  waitingFor?: (what: string) => void;
  doneWaiting?: () => void;
}

/**
 * Records one deployment, start or step. The record is written to the outbox before its first
 * request leaves (write-ahead) and removed once the gateway has it, so a crash at any moment
 * loses nothing and a replay counts nothing twice (the group remembers record ids). Older kept
 * records of the same group go first, within half the budget; other groups' kept records get
 * what is left. Nothing here throws: every failure is part of the outcome.
 */
export async function recordOne(
  context: RecorderContext,
  grouping: Grouping,
  pending: GroupRecord | Promise<GroupRecord>,
  hooks: RecordHooks = {},
): Promise<RecordOutcome> {
  const { destination, log, now } = context;
  const target = destination.target;
  const backlog: Backlog = { sent: 0, remaining: 0, quarantined: [], otherTargets: 0 };

  if (context.dryRun) {
    const record = await pending;
    const outcome: RecordOutcome = { record, grouping, target, delivered: false, backlog };
    let backend: Backend | undefined;
    try {
      backend = await openBackend(destination, log);
      outcome.dryRun = await backend.plan(grouping, record);
    } catch (error) {
      const { message } = asFailure(error);
      outcome.dryRun = {
        url: target.url,
        text: `(the request could not be worked out: ${message})\n`,
        json: { url: target.url, error: message },
      };
    } finally {
      backend?.close();
    }
    return outcome;
  }

  // While the record is still being made (its commit history read from git), the backend opens,
  // a free lock is taken and the group's read leaves. A record not made within EARLY_MS (git on a
  // long history) neither holds the lock nor spends the --timeout budget meanwhile: all of that
  // is let go, and done afresh once the record is there.
  let backend: Backend | undefined;
  let lock: GroupLock | undefined;
  let forgetRead: (() => void) | undefined;
  let notOpened: unknown;
  const open = async ({ early }: { early: boolean }) => {
    try {
      backend = await openBackend(destination, log);
      if (!early) return;
      lock = await acquireGroupLock(destination.stateDir, grouping, 0).catch(() => undefined);
      forgetRead = lock ? backend.prepare?.(grouping) : undefined;
    } catch (error) {
      notOpened = error;
    }
  };
  const letGo = async () => {
    forgetRead?.();
    forgetRead = undefined;
    await lock?.release();
    lock = undefined;
    backend?.close();
    backend = undefined;
    notOpened = undefined;
  };
  await open({ early: true });
  let record: GroupRecord;
  try {
    let timer: NodeJS.Timeout | undefined;
    const made = await Promise.race([
      pending,
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), EARLY_MS))),
    ]);
    clearTimeout(timer);
    if (made === undefined) {
      await letGo();
      record = await pending;
      await open({ early: false });
    } else {
      record = made;
    }
  } catch (error) {
    await letGo();
    throw error;
  }
  const outcome: RecordOutcome = { record, grouping, target, delivered: false, backlog };

  const outbox = new Outbox(destination.stateDir);
  let written: Promise<OutboxEntry | undefined> | undefined;
  const writeAhead = () =>
    (written ??= outbox.keep(target, grouping, record, now()).then(
      (entry) => {
        outcome.keptIn = entry.file;
        hooks.onDurable?.(true);
        return entry;
      },
      (error: unknown) => {
        outcome.notKept = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
        hooks.onDurable?.(false);
        return undefined;
      },
    ));

  const notice = { waitingFor: hooks.waitingFor ?? (() => undefined), done: hooks.doneWaiting ?? (() => undefined) };
  try {
    if (!backend) throw notOpened;
    const main = backend;
    // The group's read is under way while the record goes to disk; only the write of the record
    // waits for it to be durable. When another deployctl holds the lock, the record goes to disk
    // first, then waits.
    const ownWritten = writeAhead();
    if (!lock) {
      notice.waitingFor(
        `another deployctl on this machine to finish with ${grouping.service} in ${grouping.environment}`,
      );
      lock = await acquireGroupLock(destination.stateDir, grouping, Math.max(0, main.remainingMs()));
    }
    let delivery: Delivered | undefined;
    try {
      delivery = await deliverOwn(context, main, outbox, grouping, record, ownWritten, backlog, notice, forgetRead);
    } finally {
      await lock.release();
    }
    outcome.delivered = true;
    if (delivery) outcome.delivery = delivery;
    else outcome.sentByAnother = true;
  } catch (error) {
    outcome.failure = asFailure(error);
  } finally {
    notice.done();
    // Whatever became of the delivery, the record is on disk (or could not be put there) before this returns.
    await writeAhead();
  }

  const left = backend?.remainingMs() ?? 0;
  backend?.close();
  try {
    // Counted by file name, so that a large outbox costs a new record little (and an empty one a
    // single read of the folder).
    const counted = await outbox.countByTarget(target);
    backlog.otherTargets = counted.others;
    backlog.remaining = counted.mine;
    if (counted.mine > 0) await sendOthersAndCount(context, outbox, grouping, backlog, outcome.delivered ? left : 0);
  } catch (error) {
    // what is left is reported by the next run
    log.debug(`could not read the outbox: ${asFailure(error).message}`);
  }
  return outcome;
}

/**
 * Other groups' kept records for this target, with what is left of the budget (at most a second),
 * then what is still kept: a short list of this target's files is read, to leave out records in
 * flight to another live process.
 */
async function sendOthersAndCount(
  context: RecorderContext,
  outbox: Outbox,
  grouping: Grouping,
  backlog: Backlog,
  leftMs: number,
): Promise<void> {
  const { destination, log, now } = context;
  const target = destination.target;
  if (leftMs > 100) {
    const others = await openBackend(destination, log, { timeoutSeconds: Math.min(1, leftMs / 1000) });
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

export interface TargetFlush {
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
  const { destination, log } = context;
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
      backend = await openBackend(destination, log, { target });
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
  const { destination, log } = context;
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
      backend = await openBackend(destination, log, { target });
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
