import type { CommandContext } from './context.js';
import { deliver, openGateway, type Delivery } from './deliver.js';
import { DeployctlError, ExitCode } from './errors.js';
import { redactUrl, type Gateway } from './gateway/client.js';
import type { Grouping } from './gateway/group-state.js';
import { withGroupLock } from './lock.js';
import type { GroupRecord } from './metrics/apply.js';
import { renderRecordOutcome, type Reporter } from './output.js';
import { Outbox, sameTarget, type OutboxEntry, type QuarantinedEntry, type Target } from './outbox.js';
import type { Settings } from './settings.js';

/** Where this configuration sends records: the gateway's URL without credentials or query. */
export function targetOf(settings: Pick<Settings, 'pushgateway'>): Target {
  return { backend: 'pushgateway', url: redactUrl(settings.pushgateway, { dropCredentials: true }) };
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
  delivery?: Omit<Delivery, 'families' | 'exposition'>;
  /** Another deployctl on this machine sent this record while this one waited for the group. */
  sentByAnother?: boolean;
  /** The outbox file holding the record until it is delivered. */
  keptIn?: string;
  /** Why the record could not be written ahead to the outbox. */
  notKept?: string;
  failure?: Failure;
  backlog: Backlog;
  dryRun?: { url: string; exposition: string };
}

const groupKey = (g: Grouping) => JSON.stringify([g.job, g.service, g.environment]);

/** An error that says the gateway as a whole is out of reach, not that it refused one record. */
function gatewayUnreachable(error: unknown): boolean {
  return error instanceof DeployctlError && 'retryable' in error && error.retryable === true && !('status' in error && error.status);
}

/** The gateway client for a kept record's target: this configuration's credentials only if it is the configured gateway. */
function gatewayFor(target: Target, settings: Settings, reporter: Reporter, timeoutSeconds: number): Gateway {
  if (sameTarget(target, targetOf(settings))) return openGateway(settings, reporter, timeoutSeconds);
  return openGateway({ ...settings, pushgateway: target.url, auth: {}, tls: {} }, reporter, timeoutSeconds);
}

export interface DrainResult {
  sent: OutboxEntry[];
  failed: { entry: OutboxEntry; failure: Failure }[];
  /** Not tried: out of time, the gateway unreachable, or in flight to another process. */
  untried: OutboxEntry[];
  /** Gone from the outbox before their turn: sent by a concurrent process. */
  sentByOthers: OutboxEntry[];
}

/** Sends one group's kept records, oldest first, while its lock is held. */
async function drainGroup(context: CommandContext, gateway: Gateway, outbox: Outbox, group: OutboxEntry[], result: DrainResult): Promise<boolean> {
  const { reporter, now } = context;
  for (const [index, entry] of group.entries()) {
    if (gateway.remainingMs() <= 50) {
      result.untried.push(...group.slice(index));
      return false;
    }
    if (!(await outbox.holds(entry))) {
      result.sentByOthers.push(entry); // a concurrent process sent it
      continue;
    }
    try {
      await deliver(gateway, entry.kept.grouping, entry.kept.record, { dryRun: false, now, debug: reporter.debug });
      await outbox.remove(entry);
      result.sent.push(entry);
    } catch (error) {
      result.failed.push({ entry, failure: asFailure(error) });
      if (gatewayUnreachable(error) || !(error instanceof DeployctlError)) {
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
async function drain(context: CommandContext, gateway: Gateway, outbox: Outbox, entries: OutboxEntry[], { locked = false } = {}): Promise<DrainResult> {
  const { settings, now } = context;
  const result: DrainResult = { sent: [], failed: [], untried: [], sentByOthers: [] };
  const byGroup = new Map<string, OutboxEntry[]>();
  for (const entry of entries) {
    if (outbox.inFlight(entry, now())) continue;
    const key = groupKey(entry.kept.grouping);
    byGroup.set(key, [...(byGroup.get(key) ?? []), entry]);
  }
  let going = true;
  for (const group of byGroup.values()) {
    if (!going || gateway.remainingMs() <= 50) {
      result.untried.push(...group);
      continue;
    }
    if (locked) {
      going = await drainGroup(context, gateway, outbox, group, result);
      continue;
    }
    try {
      going = await withGroupLock(settings.stateDir, group[0]!.kept.grouping, Math.max(0, gateway.remainingMs()), () =>
        drainGroup(context, gateway, outbox, group, result),
      );
    } catch (error) {
      // The lock could not be had in time: the group's records wait for the next run.
      result.failed.push(...group.map((entry) => ({ entry, failure: asFailure(error) })));
    }
  }
  return result;
}

/**
 * Records one deployment, start or step. The record is written to the outbox before its first
 * request leaves (write-ahead) and removed once the gateway has it, so a crash at any moment
 * loses nothing and a replay counts nothing twice (the group remembers record ids). Older kept
 * records of the same group go first, within half the budget; other groups' kept records get
 * what is left. Nothing here throws: every failure is part of the outcome.
 */
export async function recordOne(context: CommandContext, grouping: Grouping, record: GroupRecord, onDurable?: (kept: boolean) => void): Promise<RecordOutcome> {
  const { settings, reporter, now } = context;
  const target = targetOf(settings);
  const backlog: Backlog = { sent: 0, remaining: 0, quarantined: [], otherTargets: 0 };
  const outcome: RecordOutcome = { record, grouping, target, delivered: false, backlog };

  if (settings.dryRun) {
    const gateway = openGateway(settings, reporter);
    try {
      const delivery = await deliver(gateway, grouping, record, { dryRun: true, now, warn: reporter.warn, debug: reporter.debug });
      outcome.dryRun = { url: delivery.url, exposition: delivery.exposition };
    } catch (error) {
      outcome.failure = asFailure(error);
    } finally {
      gateway.close();
    }
    return outcome;
  }

  const outbox = new Outbox(settings.stateDir);
  let own: OutboxEntry | undefined;
  try {
    own = await outbox.keep(target, grouping, record, now());
    outcome.keptIn = own.file;
  } catch (error) {
    outcome.notKept = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  }
  onDurable?.(own !== undefined);

  let older: OutboxEntry[] = [];
  try {
    const listed = await outbox.list({ target, grouping });
    backlog.quarantined.push(...listed.quarantined);
    older = listed.entries.filter((entry) => entry.file !== own?.file && entry.kept.record.id !== record.id);
  } catch (error) {
    reporter.debug(`could not read the outbox: ${asFailure(error).message}`);
  }

  const gateway = openGateway(settings, reporter);
  try {
    const delivery = await withGroupLock(settings.stateDir, grouping, Math.max(0, gateway.remainingMs()), async () => {
      if (older.length > 0) {
        const backlogGateway = openGateway(settings, reporter, settings.timeoutSeconds / 2);
        try {
          const drained = await drain(context, backlogGateway, outbox, older, { locked: true });
          backlog.sent += drained.sent.length;
        } finally {
          backlogGateway.close();
        }
      }
      if (own && !(await outbox.holds(own))) return undefined;
      const delivered = await deliver(gateway, grouping, record, { dryRun: false, now, debug: reporter.debug });
      if (own) await outbox.remove(own);
      return delivered;
    });
    outcome.delivered = true;
    if (delivery) {
      const { families: _families, exposition: _exposition, ...rest } = delivery;
      outcome.delivery = rest;
    } else {
      outcome.sentByAnother = true;
    }
  } catch (error) {
    outcome.failure = asFailure(error);
  }

  // Other groups' kept records for this gateway, with what is left of the budget (at most a second).
  if (outcome.delivered && gateway.remainingMs() > 100) {
    const others = openGateway(settings, reporter, Math.min(1, gateway.remainingMs() / 1000));
    try {
      const listed = await outbox.list({ target });
      backlog.quarantined.push(...listed.quarantined);
      const rest = listed.entries.filter((e) => groupKey(e.kept.grouping) !== groupKey(grouping));
      if (rest.length > 0) backlog.sent += (await drain(context, others, outbox, rest)).sent.length;
    } catch (error) {
      reporter.debug(`could not send other kept records: ${asFailure(error).message}`);
    } finally {
      others.close();
    }
  }
  gateway.close();

  try {
    const all = await outbox.list();
    backlog.quarantined.push(...all.quarantined);
    for (const entry of all.entries) {
      if (outbox.inFlight(entry, now())) continue; // another process's, being sent now
      if (sameTarget(entry.kept.target, target)) backlog.remaining += 1;
      else backlog.otherTargets += 1;
    }
  } catch {
    // what is left is reported by the next run
  }
  return outcome;
}

/**
 * Records and reports one record. The recorder never changes the outcome of a deploy: a record
 * that could not be delivered stays kept with a warning, and the exit code is 0 (1 under --strict).
 * `toStderr` keeps stdout for a wrapped command's own output; `onDurable` is called once the
 * record is on disk (or could not be put there).
 */
export async function sendRecord(
  context: CommandContext,
  grouping: Grouping,
  record: GroupRecord,
  { toStderr = false, onDurable }: { toStderr?: boolean; onDurable?: (kept: boolean) => void } = {},
): Promise<number> {
  const outcome = await recordOne(context, grouping, record, onDurable);
  renderRecordOutcome(outcome, context.settings, context.reporter, { toStderr });
  return outcome.delivered || outcome.dryRun ? ExitCode.ok : context.settings.strict ? ExitCode.failure : ExitCode.ok;
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

/** `deployctl flush`: each kept record to its own target, within the budget per target. */
export async function flushAll(context: CommandContext): Promise<FlushOutcome> {
  const { settings, reporter } = context;
  const outbox = new Outbox(settings.stateDir);
  const { entries, quarantined } = await outbox.list({ leaveInPlace: settings.dryRun });
  const byTarget = new Map<string, OutboxEntry[]>();
  for (const entry of entries) {
    const key = JSON.stringify(entry.kept.target);
    byTarget.set(key, [...(byTarget.get(key) ?? []), entry]);
  }
  const targets: TargetFlush[] = [];
  for (const group of byTarget.values()) {
    const target = group[0]!.kept.target;
    const configured = sameTarget(target, targetOf(settings));
    if (settings.dryRun) {
      targets.push({ target, sent: 0, remaining: group.length, failures: [], pending: group.map((e) => ({ record: e.kept.record, grouping: e.kept.grouping })), configured });
      continue;
    }
    const gateway = gatewayFor(target, settings, reporter, settings.timeoutSeconds);
    try {
      const drained = await drain(context, gateway, outbox, group);
      targets.push({
        target,
        sent: drained.sent.length,
        remaining: group.length - drained.sent.length - drained.sentByOthers.length,
        failures: drained.failed.map(({ entry, failure }) => ({ record: entry.kept.record, grouping: entry.kept.grouping, failure })),
        pending: [],
        configured,
      });
    } finally {
      gateway.close();
    }
  }
  return { targets, quarantined, dryRun: settings.dryRun };
}
