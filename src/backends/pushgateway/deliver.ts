import { retryWithinBudget } from '../../adapters/retry.js';
import { GatewayError } from '../../core/errors.js';
import { FAMILIES } from '../../core/families.js';
import type { Grouping, GroupRecord } from '../../core/record.js';
import {
  type Applied,
  alreadyApplied,
  applyRecord,
  confirmation,
  REMEMBERED_RECORDS,
  type StoredRecord,
} from './apply.js';
import { type Gateway, groupPath } from './client.js';
import { MERGED_RECORDS } from './deliver-limits.js';
import { renderExposition } from './exposition.js';
import type { Continued } from './lost-totals.js';
import { type Family, type GroupState, totalsByStatus } from './model.js';
import type { Continuation } from './scraped-totals.js';

export interface Delivery extends Applied {
  url: string;
  exposition: string;
  /** Deployments by status on the gateway after this record (deployment records only). */
  totals: Record<string, number>;
  attempts: number;
  /** What the read said of each record given in `confirm`, by id. */
  confirmed: Record<string, 'held' | 'replaced' | 'unknown'>;
  /** Stored without reading it back: whether another writer replaced it is told by a later read (`confirm`). */
  unconfirmed: boolean;
}

export interface MergeOptions {
  dryRun: boolean;
  now: () => number;
  warn?: (message: string) => void;
  debug?: (message: string) => void;
  /** Continues the group from Prometheus when the gateway lost its totals. */
  continueFrom?: Continuation;
  /**
   * Read the group again after the write, to catch another machine replacing it in between
   * (default). Without it the caller must confirm the record with a later read (`confirm`).
   */
  readBack?: boolean;
  /** Records stored earlier without a read-back: the read this delivery makes anyway says what became of them. */
  confirm?: readonly StoredRecord[];
  /** A read of the group already under way (made under the group's lock): the first attempt uses it. */
  firstRead?: Promise<GroupState>;
  /** The record as it may be applied, once the read answered (its times checked against the gateway's clock). */
  settle?: (record: GroupRecord) => Promise<GroupRecord>;
}

/** Another writer replaced the group between our read and write: the merge is done again. */
class LostUpdateError extends GatewayError {
  constructor(grouping: Grouping) {
    super(`another writer replaced ${grouping.service} in ${grouping.environment} at the same time`, undefined, true);
    this.name = 'LostUpdateError';
  }
}

const deploymentTotals = (families: Iterable<Family>, labels: Record<string, string>) =>
  totalsByStatus(
    [...families].find((f) => f.name === FAMILIES.deployments.name),
    labels,
  );

async function readForDelivery(gateway: Gateway, grouping: Grouping, options: MergeOptions): Promise<GroupState> {
  try {
    return await gateway.readGroup(grouping);
  } catch (error) {
    if (!options.dryRun || !(error instanceof GatewayError)) throw error;
    options.warn?.(`${error.message}; showing the push for a group the gateway does not hold yet`);
    return new Map();
  }
}

/**
 * One read-merge-write of the group: read it, carry it forward by this record, write the
 * changed families back in one POST, then (unless told not to) read again to check that the
 * record is there.
 */
async function attempt(
  gateway: Gateway,
  grouping: Grouping,
  given: GroupRecord,
  options: MergeOptions,
  early?: Promise<GroupState>,
): Promise<Omit<Delivery, 'attempts'>> {
  const read = early ? await early : await readForDelivery(gateway, grouping, options);
  const record = options.settle ? await options.settle(given) : given;
  const confirmed = Object.fromEntries(
    (options.confirm ?? []).map((stored) => [stored.id, confirmation(read, stored)]),
  );
  const readBack = options.readBack ?? true;
  const continued = options.continueFrom && (await options.continueFrom(grouping, read));
  for (const warning of continued?.warnings ?? []) options.warn?.(warning);
  const state = continued ? continued.state : read;
  const applied = applyRecord(state, record, options.now());
  if (continued && !applied.duplicate) withContinuation(applied, continued, grouping);
  const exposition = await renderExposition(applied.families);
  const url = gateway.displayUrl(groupPath(grouping));
  const labels = record.kind === 'deployment' ? record.labels : {};
  if (applied.duplicate || options.dryRun) {
    const after = applied.duplicate
      ? state.values()
      : new Map([...state, ...applied.families.map((f) => [f.name, f] as const)]).values();
    return { ...applied, url, exposition, totals: deploymentTotals(after, labels), confirmed, unconfirmed: false };
  }
  await gateway.push(grouping, exposition);
  // Without compare-and-swap on the gateway, a concurrent writer from another machine can
  // replace our write with one merged from the older state; detect that and merge again.
  if (readBack && !alreadyApplied(await gateway.readGroup(grouping), record.id)) throw new LostUpdateError(grouping);
  return {
    ...applied,
    url,
    exposition,
    totals: deploymentTotals(applied.families, labels),
    confirmed,
    unconfirmed: !readBack,
  };
}

/** Writes back what was continued from Prometheus, and says so. */
function withContinuation(applied: Applied, continued: Continued, grouping: Grouping): void {
  if (continued.lowered.length === 0) return;
  for (const family of continued.changed)
    if (!applied.families.some((f) => f.name === family.name)) applied.families.push(family);
  applied.notices.push(
    `the gateway held lower totals for ${grouping.service} in ${grouping.environment} than Prometheus last scraped from it before it restarted (${continued.lowered.slice(0, 3).join(', ')}${continued.lowered.length > 3 ? ', …' : ''}): ` +
      'it restarted without persistence, or from an old file. The totals continue from what Prometheus scraped',
  );
}

/**
 * Delivers one record, retrying network errors, time-outs, 5xx answers and lost updates with
 * backoff and jitter while the --timeout budget lasts. A retry reads the group again, so a
 * write whose answer was lost is found applied (by the record's identity) and not counted twice.
 */
export async function deliver(
  gateway: Gateway,
  grouping: Grouping,
  record: GroupRecord,
  options: MergeOptions,
): Promise<Delivery> {
  let early = options.firstRead;
  const { value: delivery, attempts } = await retryWithinBudget(
    () => gateway.remainingMs(),
    options.debug,
    () => {
      // Only the first attempt may use the early read: a retry reads the group afresh.
      const read = early;
      early = undefined;
      return attempt(gateway, grouping, record, options, read);
    },
  );
  // A retry that finds the record applied means an earlier attempt stored it.
  return { ...delivery, duplicate: delivery.duplicate && attempts === 1, attempts };
}

// A resend after a crash must find every record of the write it repeats still remembered.
if (MERGED_RECORDS * 2 > REMEMBERED_RECORDS) throw new Error('MERGED_RECORDS must be at most REMEMBERED_RECORDS / 2');

/** What a merged delivery did: the records the group held already, and what is worth a line. */
export interface ManyDelivery {
  duplicates: string[];
  notices: string[];
  attempts: number;
  /** The group as the read-back after the write showed it: the next write's read, under the same lock. */
  after?: GroupState;
}

/** One read of the group, every record applied to it in order, one POST, and (unless told not to) one read back. */
async function attemptMany(
  gateway: Gateway,
  grouping: Grouping,
  given: readonly GroupRecord[],
  settles: readonly ((record: GroupRecord) => Promise<GroupRecord>)[],
  options: MergeOptions,
  early?: Promise<GroupState>,
): Promise<Omit<ManyDelivery, 'attempts'>> {
  const read = early ? await early : await readForDelivery(gateway, grouping, options);
  const continued = options.continueFrom && (await options.continueFrom(grouping, read));
  for (const warning of continued?.warnings ?? []) options.warn?.(warning);
  let state = continued ? continued.state : read;
  const changed = new Map<string, Family>();
  if (continued && continued.lowered.length > 0)
    for (const family of continued.changed) changed.set(family.name, family);
  const duplicates: string[] = [];
  const notices: string[] = [];
  const appliedAt = options.now();
  for (const [index, unsettled] of given.entries()) {
    const settle = settles[index];
    const record = settle ? await settle(unsettled) : unsettled;
    const applied = applyRecord(state, record, appliedAt);
    if (applied.duplicate) {
      duplicates.push(record.id);
      continue;
    }
    notices.push(...applied.notices);
    state = new Map([...state, ...applied.families.map((f) => [f.name, f] as const)]);
    for (const family of applied.families) changed.set(family.name, family);
  }
  if (changed.size === 0 || options.dryRun) return { duplicates, notices };
  await gateway.push(grouping, await renderExposition([...changed.values()]));
  if (options.readBack ?? true) {
    const back = await gateway.readGroup(grouping);
    if (given.some((record) => !alreadyApplied(back, record.id))) throw new LostUpdateError(grouping);
    return { duplicates, notices, after: back };
  }
  return { duplicates, notices };
}

/**
 * Delivers several kept records of one group (at most MERGED_RECORDS) in one write, retried as a
 * whole like `deliver`: a retry reads the group again, so records an earlier attempt stored are
 * found applied (by their identities) and not counted twice.
 */
export async function deliverMany(
  gateway: Gateway,
  grouping: Grouping,
  records: readonly GroupRecord[],
  settles: readonly ((record: GroupRecord) => Promise<GroupRecord>)[],
  options: MergeOptions,
): Promise<ManyDelivery> {
  if (records.length > MERGED_RECORDS) throw new Error(`at most ${MERGED_RECORDS} records in one write`);
  let early = options.firstRead;
  const { value, attempts } = await retryWithinBudget(
    () => gateway.remainingMs(),
    options.debug,
    () => {
      // Only the first attempt may use the read it was given: a retry reads the group afresh.
      const read = early;
      early = undefined;
      return attemptMany(gateway, grouping, records, settles, options, read);
    },
  );
  return { ...value, duplicates: attempts === 1 ? value.duplicates : [], attempts };
}
