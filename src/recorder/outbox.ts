import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { writeFileDurably, writeFileDurablyInBackground } from '../adapters/durable-file.js';
import { ATTRIBUTION_WINDOW_BOUNDS } from '../core/failed-change.js';
import {
  type Grouping,
  type GroupRecord,
  groupFileName,
  STATUSES,
  sameTarget,
  type Target,
  VERIFICATION_RESULTS,
} from '../core/record.js';
import { sha256Hex } from '../core/sha256.js';

/** A record on disk: written before its first request leaves, removed once the backend confirmed it. */
interface KeptRecord {
  format: 2;
  /** Unix seconds. */
  keptAt: number;
  /** The process that kept it, so that others leave a record in flight to it. */
  pid: number;
  host: string;
  target: Target;
  grouping: Grouping;
  record: GroupRecord;
  /** In `outbox/sent/`: the group's sequence number the backend gave it, to confirm it by (kept in the file name). */
  sentSequence?: number;
  /** In `outbox/held/`: why its target refused it for good, and when (Unix seconds); it waits for `deployctl outbox`. */
  held?: { reason: string; at: number };
}

export interface OutboxEntry {
  file: string;
  kept: KeptRecord;
}

export interface QuarantinedEntry {
  file: string;
  /** Where it was moved, or undefined when it could not be moved (it is then left where it is and skipped). */
  movedTo?: string;
  problem: string;
}

const hash8 = (text: string) => sha256Hex(text).slice(0, 8);
const targetTag = (target: Target) => hash8(`${target.backend} ${target.url}`);
const groupTag = (grouping: Grouping) => groupFileName(grouping).slice(0, 8);

const RECORD_ID = /^[A-Za-z0-9_-]{1,100}$/;
/** How a file in `outbox/sent/` carries the sequence number its record was stored at. */
const SENT_SUFFIX = /\.s(\d+)\.json$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isString = (value: unknown): value is string => typeof value === 'string' && value.length <= 4096;
const isTime = (value: unknown) => typeof value === 'number' && Number.isFinite(value) && value >= 0;
const isOptionalTime = (value: unknown) => value === undefined || isTime(value);

function isLabels(value: unknown): boolean {
  return (
    isObject(value) &&
    Object.entries(value).every(([name, v]) => LABEL_NAME.test(name) && !name.startsWith('__') && isString(v))
  );
}

function isHistory(value: unknown): boolean {
  return (
    value === undefined ||
    (Array.isArray(value) &&
      value.every(
        (node) =>
          isObject(node) &&
          isString(node.sha) &&
          isTime(node.time) &&
          Array.isArray(node.parents) &&
          node.parents.every(isString),
      ))
  );
}

/** Why a parsed file is not a record deployctl would send, or undefined when it is one. */
function problemWithKept(value: unknown): string | undefined {
  if (!isObject(value)) return 'not a deployctl record';
  if (value.format === 1) return 'kept by an older deployctl that did not note where it was meant to go';
  if (value.format !== 2) return 'not a deployctl record';
  const target = value.target;
  if (
    !isObject(target) ||
    (target.backend !== 'pushgateway' && target.backend !== 'remote-write') ||
    !isString(target.url) ||
    /@/.test(target.url.split('/')[2] ?? '')
  ) {
    return 'no valid target';
  }
  const g = value.grouping;
  if (
    !isObject(g) ||
    !isString(g.job) ||
    g.job === '' ||
    !isString(g.service) ||
    g.service === '' ||
    !isString(g.environment) ||
    g.environment === ''
  ) {
    return 'no valid service and environment';
  }
  const r = value.record;
  if (!isObject(r) || !isString(r.id) || !RECORD_ID.test(r.id)) return 'no valid record id';
  if (r.samples !== undefined && !isSamples(r.samples)) return 'samples that are not remote-write time series';
  if (r.timeFromClock !== undefined && r.timeFromClock !== true) return 'a time source that is not true';
  if (r.clockCorrection !== undefined && !(typeof r.clockCorrection === 'number' && Number.isFinite(r.clockCorrection)))
    return 'a clock correction that is not a number';
  switch (r.kind) {
    case 'start':
      return isTime(r.startedAt) ? undefined : 'a start without a valid time';
    case 'step':
      return isString(r.step) &&
        r.step !== '' &&
        STATUSES.includes(r.status as never) &&
        isTime(r.finishedAt) &&
        isTime(r.durationSeconds)
        ? undefined
        : 'a step with invalid fields';
    case 'deployment':
      return STATUSES.includes(r.status as never) &&
        isTime(r.finishedAt) &&
        isOptionalTime(r.durationSeconds) &&
        isOptionalTime(r.commitTime) &&
        isString(r.version) &&
        isString(r.commit) &&
        isLabels(r.labels) &&
        isHistory(r.history)
        ? undefined
        : 'a deployment with invalid fields';
    case 'verification':
      return VERIFICATION_RESULTS.includes(r.result as never) &&
        isTime(r.startedAt) &&
        isTime(r.finishedAt) &&
        (r.finishedAt as number) >= (r.startedAt as number)
        ? undefined
        : 'a verification with invalid fields';
    case 'incident':
      return isString(r.incident) &&
        r.incident !== '' &&
        (r.action === 'open' || r.action === 'resolve') &&
        isTime(r.at) &&
        isOptionalTime(r.openedAt) &&
        (r.attributionWindowSeconds === undefined ||
          (r.action === 'open' &&
            typeof r.attributionWindowSeconds === 'number' &&
            r.attributionWindowSeconds >= ATTRIBUTION_WINDOW_BOUNDS.min &&
            r.attributionWindowSeconds <= ATTRIBUTION_WINDOW_BOUNDS.max))
        ? undefined
        : 'an incident with invalid fields';
    default:
      return 'an unknown kind of record';
  }
}

/** Remote-write samples kept with a record so that a resend is identical. */
function isSamples(value: unknown): boolean {
  return (
    Array.isArray(value) &&
    value.every(
      (series) =>
        isObject(series) &&
        Array.isArray(series.labels) &&
        series.labels.every((l) => isObject(l) && isString(l.name) && isString(l.value)) &&
        Array.isArray(series.samples) &&
        series.samples.every((x) => isObject(x) && typeof x.value === 'number' && Number.isInteger(x.timestampMs)),
    )
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Records on disk: each written (atomically, fsynced) before its first request leaves and
 * removed once the backend has it, so a crash at any moment loses nothing. One file each, named
 * by time, target, group and record id (never by anything secret), so a command reads only the
 * files of its own group. Files that are not valid records are moved to `outbox/quarantine/`,
 * never sent. The files are small and a command reads few of them: every call here is
 * synchronous, which costs far less than a trip through libuv's thread pool each.
 */
export class Outbox {
  readonly dir: string;
  readonly quarantineDir: string;
  /**
   * Records the backend stored without reading them back (the Pushgateway at scale): kept until a
   * later read of their group shows them, since another machine may have replaced the group.
   */
  readonly sentDir: string;
  /**
   * Records their target refused for good (a wrong path or scheme, samples a store will never take):
   * never sent again as they are; `deployctl outbox` moves them to the corrected URL or drops them.
   */
  readonly heldDir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'outbox');
    this.quarantineDir = join(this.dir, 'quarantine');
    this.sentDir = join(this.dir, 'sent');
    this.heldDir = join(this.dir, 'held');
  }

  /** Writes a new record ahead of its first request: on disk when this resolves. */
  async keep(target: Target, grouping: Grouping, record: GroupRecord, now: number): Promise<OutboxEntry> {
    const name = `${String(Math.round(now * 1000)).padStart(14, '0')}-${targetTag(target)}-${groupTag(grouping)}-${record.id}.json`;
    const file = join(this.dir, name);
    const kept: KeptRecord = { format: 2, keptAt: now, pid: process.pid, host: hostname(), target, grouping, record };
    await writeFileDurablyInBackground(file, `${JSON.stringify(kept)}\n`, { makeDir: true });
    return { file, kept };
  }

  private async names(dir = this.dir): Promise<string[]> {
    try {
      return readdirSync(dir)
        .filter((name) => name.endsWith('.json'))
        .sort();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      throw error;
    }
  }

  /** How many files the outbox holds for this target and for others, from their names alone. */
  async countByTarget(target: Target): Promise<{ mine: number; others: number }> {
    const tag = targetTag(target);
    const names = await this.names();
    const mine = names.filter((name) => name.split('-')[1] === tag).length;
    return { mine, others: names.length - mine };
  }

  /**
   * The kept records, oldest first: all, or those of one target (and one group), at most `limit`.
   * A file that is not a valid record is quarantined (left in place with `leaveInPlace`) and
   * reported, never sent.
   */
  async list(
    filter: {
      target?: Target;
      grouping?: Grouping;
      leaveInPlace?: boolean;
      limit?: number;
      sent?: boolean;
      held?: boolean;
      /** Stop reading at this time (Date.now() milliseconds): what is not read yet waits. */
      deadline?: number;
    } = {},
  ): Promise<{ entries: OutboxEntry[]; quarantined: QuarantinedEntry[]; unread: number }> {
    const prefix = [filter.target && targetTag(filter.target), filter.grouping && groupTag(filter.grouping)];
    const entries: OutboxEntry[] = [];
    const quarantined: QuarantinedEntry[] = [];
    const dir = filter.sent ? this.sentDir : filter.held ? this.heldDir : this.dir;
    const names = await this.names(dir);
    for (const [index, name] of names.entries()) {
      if (filter.limit !== undefined && entries.length >= filter.limit) break;
      if (filter.deadline !== undefined && index % 256 === 0 && Date.now() >= filter.deadline) {
        return { entries, quarantined, unread: names.length - index };
      }
      const parts = name.split('-');
      if (prefix[0] && parts[1] !== prefix[0]) continue;
      if (prefix[1] && parts[2] !== prefix[1]) continue;
      const file = join(dir, name);
      let problem: string | undefined;
      try {
        if (!statSync(file).isFile()) continue;
        const kept = JSON.parse(readFileSync(file, 'utf8')) as KeptRecord;
        problem = problemWithKept(kept);
        if (!problem) {
          if (filter.target && !sameTarget(kept.target, filter.target)) continue;
          const sequence = SENT_SUFFIX.exec(name)?.[1];
          entries.push({ file, kept: filter.sent && sequence ? { ...kept, sentSequence: Number(sequence) } : kept });
          continue;
        }
      } catch (error) {
        const err = error as NodeJS.ErrnoException;
        if (err.code === 'ENOENT') continue; // sent by a concurrent process
        problem = err instanceof SyntaxError ? 'not valid JSON' : (err.code ?? 'unreadable');
      }
      quarantined.push(filter.leaveInPlace ? { file, problem } : await this.quarantine(file, name, problem));
    }
    return { entries, quarantined, unread: 0 };
  }

  /** How many records wait in `outbox/held/`, from the folder alone. */
  async countHeld(): Promise<number> {
    return (await this.names(this.heldDir)).length;
  }

  /**
   * Puts a record its target refused for good apart, with the reason: written to `outbox/held/`
   * before it leaves the outbox, so that a crash in between leaves it twice (the same record id,
   * which the backend counts once), never nowhere.
   */
  async hold(entry: OutboxEntry, reason: string, now: number): Promise<void> {
    const { sentSequence: _sequence, ...rest } = entry.kept;
    const kept: KeptRecord = { ...rest, held: { reason: reason.slice(0, 1000), at: now } };
    const file = join(this.heldDir, basename(entry.file).replace(SENT_SUFFIX, '.json'));
    mkdirSync(this.heldDir, { recursive: true, mode: 0o700 });
    writeFileDurably(file, `${JSON.stringify(kept)}\n`);
    await this.remove(entry);
    entry.file = file;
    entry.kept = kept;
  }

  /**
   * Sends a kept or held record to another target from now on: written afresh to the outbox under
   * the new target (not held any more) before the old file goes. A crash in between leaves the
   * record under both targets; `move` never runs into a record being sent (see `outbox` command).
   */
  async retarget(entry: OutboxEntry, target: Target): Promise<OutboxEntry> {
    const { held: _held, sentSequence: _sequence, ...rest } = entry.kept;
    const kept: KeptRecord = { ...rest, target };
    const parts = basename(entry.file).replace(SENT_SUFFIX, '.json').split('-');
    parts[1] = targetTag(target);
    const file = join(this.dir, parts.join('-'));
    writeFileDurably(file, `${JSON.stringify(kept)}\n`, { makeDir: true });
    if (file !== entry.file) await this.remove(entry);
    return { file, kept };
  }

  private async quarantine(file: string, name: string, problem: string): Promise<QuarantinedEntry> {
    const movedTo = join(this.quarantineDir, name);
    try {
      mkdirSync(this.quarantineDir, { recursive: true, mode: 0o700 });
      renameSync(file, movedTo);
      return { file, movedTo, problem };
    } catch {
      return { file, problem };
    }
  }

  /** A record kept a moment ago by a process that is still running: it is that process's to send. */
  inFlight(entry: OutboxEntry, now: number): boolean {
    const { pid, host, keptAt } = entry.kept;
    return pid !== process.pid && host === hostname() && now - keptAt < 600 && alive(pid);
  }

  async holds(entry: OutboxEntry): Promise<boolean> {
    return existsSync(entry.file);
  }

  /** Rewrites a kept record in place (atomically), e.g. with what it must be re-sent as. */
  async update(entry: OutboxEntry, record: GroupRecord): Promise<void> {
    const kept: KeptRecord = { ...entry.kept, record };
    writeFileDurably(entry.file, `${JSON.stringify(kept)}\n`);
    entry.kept = kept;
  }

  /** Stored by the backend at `sequence`, to be confirmed by a later read of its group (see sentDir): a rename, no write. */
  async markSent(entry: OutboxEntry, sequence: number): Promise<void> {
    mkdirSync(this.sentDir, { recursive: true, mode: 0o700 });
    const file = join(this.sentDir, basename(entry.file).replace(/\.json$/, `.s${sequence}.json`));
    renameSync(entry.file, file);
    entry.file = file;
    entry.kept = { ...entry.kept, sentSequence: sequence };
  }

  /** A sent record its group does not hold (another writer replaced the group): to be sent again. */
  async unsend(entry: OutboxEntry): Promise<void> {
    const file = join(this.dir, basename(entry.file).replace(SENT_SUFFIX, '.json'));
    renameSync(entry.file, file);
    const { sentSequence: _sequence, ...kept } = entry.kept;
    entry.file = file;
    entry.kept = kept;
  }

  async remove(entry: OutboxEntry): Promise<void> {
    try {
      unlinkSync(entry.file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}
