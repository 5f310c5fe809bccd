import type { Backend, Delivered, Plan } from '../backends/backend.js';
import type { Grouping, GroupRecord, Target } from '../core/record.js';
import { BACKLOG_READ_LIMIT, type Backlog, deliverKept, drain, sendOthersAndCount, settleSent } from './backlog.js';
import { asFailure, type Failure, openBackendFor, type RecorderContext } from './context.js';
import { acquireGroupLock, type GroupLock } from './lock.js';
import { Outbox, type OutboxEntry } from './outbox.js';

/** The result of recording one record, as data; src/cli/render/output.ts renders it. */
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

/** Hooks for the one who reports: the record is on disk (or could not be put there); a wait begins; waiting is over. */
export interface RecordHooks {
  onDurable?: (kept: boolean) => void;
  waitingFor?: (what: string) => void;
  doneWaiting?: () => void;
}

/** How long a record still being made may hold its group's lock and read (see Recording.make). */
const EARLY_MS = 250;

const emptyBacklog = (): Backlog => ({ sent: 0, remaining: 0, quarantined: [], otherTargets: 0 });

/** --dry-run: the request the record would make, worked out by the backend; nothing is sent or kept. */
async function planDryRun(context: RecorderContext, grouping: Grouping, record: GroupRecord): Promise<RecordOutcome> {
  const target = context.destination.target;
  const outcome: RecordOutcome = { record, grouping, target, delivered: false, backlog: emptyBacklog() };
  let backend: Backend | undefined;
  try {
    backend = await openBackendFor(context);
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

/**
 * One record on its way, step by step (see recordOne): what it holds from one step to the next
 * (the backend, the group's lock, the group's early read, the write-ahead) and the outbox.
 */
class Recording {
  private readonly outbox: Outbox;
  private readonly waitingFor: (what: string) => void;
  private backend: Backend | undefined;
  /** Why the backend could not be opened, when it could not. */
  private notOpened: unknown;
  private lock: GroupLock | undefined;
  /** Drops the group's early read (Backend.prepare). */
  private forgetRead: (() => void) | undefined;
  private written: Promise<OutboxEntry | undefined> | undefined;

  constructor(
    private readonly context: RecorderContext,
    private readonly grouping: Grouping,
    private readonly hooks: RecordHooks,
  ) {
    this.outbox = new Outbox(context.destination.stateDir);
    this.waitingFor = hooks.waitingFor ?? (() => undefined);
  }

  /**
   * The record, made. While it is still being made (its commit history read from git), the
   * backend opens, a free lock is taken and the group's read leaves. A record not made within
   * EARLY_MS (git on a long history) neither holds the lock nor spends the --timeout budget
   * meanwhile: all of that is let go, and done afresh once the record is there.
   */
  async make(pending: GroupRecord | Promise<GroupRecord>): Promise<GroupRecord> {
    await this.open({ early: true });
    let timer: NodeJS.Timeout | undefined;
    try {
      const made = await Promise.race([
        pending,
        new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), EARLY_MS))),
      ]).finally(() => clearTimeout(timer));
      if (made !== undefined) return made;
      await this.letGo();
      const record = await pending;
      await this.open({ early: false });
      return record;
    } catch (error) {
      await this.letGo();
      throw error;
    }
  }

  /** Opens the backend; early, also takes the lock if it is free and starts the group's read under it. */
  private async open({ early }: { early: boolean }): Promise<void> {
    try {
      const backend = await openBackendFor(this.context);
      this.backend = backend;
      if (!early) return;
      this.lock = await acquireGroupLock(this.context.destination.stateDir, this.grouping, 0).catch(() => undefined);
      this.forgetRead = this.lock ? backend.prepare?.(this.grouping) : undefined;
    } catch (error) {
      this.notOpened = error;
    }
  }

  private async letGo(): Promise<void> {
    this.forgetRead?.();
    this.forgetRead = undefined;
    await this.lock?.release();
    this.lock = undefined;
    this.backend?.close();
    this.backend = undefined;
    this.notOpened = undefined;
  }

  /** The write-ahead: the record to the outbox, once however often it is asked for. */
  private writeAhead(outcome: RecordOutcome): Promise<OutboxEntry | undefined> {
    const { destination, now } = this.context;
    this.written ??= this.outbox.keep(destination.target, this.grouping, outcome.record, now()).then(
      (entry) => {
        outcome.keptIn = entry.file;
        this.hooks.onDurable?.(true);
        return entry;
      },
      (error: unknown) => {
        outcome.notKept = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
        this.hooks.onDurable?.(false);
        return undefined;
      },
    );
    return this.written;
  }

  /** The delivery under the group's lock, waited for when another deployctl holds it. */
  async deliver(outcome: RecordOutcome): Promise<void> {
    const { grouping } = this;
    try {
      if (!this.backend) throw this.notOpened;
      const main = this.backend;
      // The group's read is under way while the record goes to disk; only the write of the record
      // waits for it to be durable. When another deployctl holds the lock, the record goes to disk
      // first, then waits.
      const ownWritten = this.writeAhead(outcome);
      if (!this.lock) {
        this.waitingFor(
          `another deployctl on this machine to finish with ${grouping.service} in ${grouping.environment}`,
        );
        this.lock = await acquireGroupLock(
          this.context.destination.stateDir,
          grouping,
          Math.max(0, main.remainingMs()),
        );
      }
      const lock = this.lock;
      let delivery: Delivered | undefined;
      try {
        delivery = await this.deliverOwn(main, outcome, ownWritten);
      } finally {
        await lock.release();
      }
      outcome.delivered = true;
      if (delivery) {
        // The record as written: its times corrected against the server's clock, when they were.
        const { record: written, ...delivered } = delivery;
        outcome.delivery = delivered;
        if (written) outcome.record = written;
      } else outcome.sentByAnother = true;
    } catch (error) {
      outcome.failure = asFailure(error);
    } finally {
      this.hooks.doneWaiting?.();
      // Whatever became of the delivery, the record is on disk (or could not be put there) before this returns.
      await this.writeAhead(outcome);
    }
  }

  /**
   * Under the group's lock: sends the group's older kept records first (within half the budget),
   * then this one. Records stored earlier without a read-back are confirmed by the read this
   * delivery makes anyway; this record in turn waits in outbox/sent/ for the next one (or flush).
   * Undefined when another deployctl sent this record meanwhile.
   */
  private async deliverOwn(
    main: Backend,
    { record, backlog }: RecordOutcome,
    ownWritten: Promise<OutboxEntry | undefined>,
  ): Promise<Delivered | undefined> {
    const { outbox, grouping } = this;
    const target = main.target;
    const [older, sent] = await this.readKept(target, record, backlog);
    if (older.length > 0) await this.sendOlderFirst(target, older, backlog);
    const own = await ownWritten;
    if (own && !(await outbox.holds(own))) return undefined;
    this.waitingFor(
      `the gateway at ${target.url} (retrying for up to ${Math.round(main.remainingMs() / 1000)}s more, --timeout)`,
    );
    if (!own) return main.deliver(grouping, record); // nothing on disk to confirm later: read back now
    const confirm = sent.map((e) => ({ id: e.kept.record.id, sequence: e.kept.sentSequence! }));
    const delivered = await deliverKept(main, outbox, own, { readBack: false, confirm });
    const replaced = await settleSent(outbox, sent, delivered.confirmed);
    if (replaced.length > 0) {
      this.context.log.warn(
        `${replaced.length} earlier record(s) of ${grouping.service} in ${grouping.environment} were overwritten on the gateway by another writer; sending them again`,
      );
      const again = await drain(this.context, main, outbox, replaced, { locked: true });
      backlog.sent += again.sent.length;
    }
    return delivered;
  }

  /** The group's older kept records (but this one), and its records stored without a read-back. */
  private readKept(target: Target, record: GroupRecord, backlog: Backlog): Promise<[OutboxEntry[], OutboxEntry[]]> {
    const { outbox, grouping } = this;
    return Promise.all([
      outbox.list({ target, grouping, limit: BACKLOG_READ_LIMIT }).then(
        (listed) => {
          backlog.quarantined.push(...listed.quarantined);
          return listed.entries.filter((entry) => entry.kept.record.id !== record.id);
        },
        (error: unknown) => {
          this.context.log.debug(`could not read the outbox: ${asFailure(error).message}`);
          return [];
        },
      ),
      outbox.list({ target, grouping, sent: true, limit: BACKLOG_READ_LIMIT }).then(
        (listed) => listed.entries.filter((e) => e.kept.sentSequence !== undefined),
        () => [],
      ),
    ]);
  }

  /** The group's older kept records, oldest first, with half the budget. */
  private async sendOlderFirst(target: Target, older: OutboxEntry[], backlog: Backlog): Promise<void> {
    const { destination } = this.context;
    this.forgetRead?.(); // read before the backlog changed the group
    this.waitingFor(
      `the gateway at ${target.url} to take ${older.length} record(s) kept earlier (at most ${Math.round(destination.timeoutSeconds / 2)}s)`,
    );
    const backlogBackend = await openBackendFor(this.context, { timeoutSeconds: destination.timeoutSeconds / 2 });
    try {
      const drained = await drain(this.context, backlogBackend, this.outbox, older, { locked: true });
      backlog.sent += drained.sent.length;
    } finally {
      backlogBackend.close();
    }
  }

  /**
   * What is still kept for this target, once the backend is closed; when some is, other groups'
   * kept records get what is left of the budget first (sendOthersAndCount).
   */
  async countKept({ delivered, backlog }: RecordOutcome): Promise<void> {
    const { destination, log } = this.context;
    const left = this.backend?.remainingMs() ?? 0;
    this.backend?.close();
    try {
      // Counted by file name, so that a large outbox costs a new record little (and an empty one a
      // single read of the folder).
      const counted = await this.outbox.countByTarget(destination.target);
      backlog.otherTargets = counted.others;
      backlog.remaining = counted.mine;
      if (counted.mine > 0) {
        await sendOthersAndCount(this.context, this.outbox, this.grouping, backlog, delivered ? left : 0);
      }
    } catch (error) {
      // what is left is reported by the next run
      log.debug(`could not read the outbox: ${asFailure(error).message}`);
    }
  }
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
  if (context.dryRun) return planDryRun(context, grouping, await pending);
  const recording = new Recording(context, grouping, hooks);
  const record = await recording.make(pending);
  const outcome: RecordOutcome = {
    record,
    grouping,
    target: context.destination.target,
    delivered: false,
    backlog: emptyBacklog(),
  };
  await recording.deliver(outcome);
  await recording.countKept(outcome);
  return outcome;
}
