import { access, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Grouping } from './gateway/group-state.js';
import type { GroupRecord } from './metrics/apply.js';

/** A record that could not be delivered, as it waits on disk. */
export interface KeptRecord {
  format: 1;
  /** Unix seconds. */
  keptAt: number;
  grouping: Grouping;
  record: GroupRecord;
  /** Why it was kept: the last delivery error. */
  reason: string;
}

export interface OutboxEntry {
  file: string;
  kept: KeptRecord;
}

export interface CorruptEntry {
  file: string;
  movedTo: string;
  problem: string;
}

function isGrouping(value: unknown): value is Grouping {
  const g = value as Grouping;
  return typeof g === 'object' && g !== null && typeof g.job === 'string' && typeof g.service === 'string' && typeof g.environment === 'string';
}

function isRecord(value: unknown): value is GroupRecord {
  const r = value as GroupRecord;
  return typeof r === 'object' && r !== null && typeof r.id === 'string' && ['deployment', 'start', 'step'].includes(r.kind);
}

/**
 * Records kept on disk while the gateway cannot take them: one file each, written atomically,
 * named by time and record id (never by anything secret), sent oldest first.
 */
export class Outbox {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'outbox');
  }

  async keep(grouping: Grouping, record: GroupRecord, reason: string, now: number): Promise<string> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const file = join(this.dir, `${String(Math.round(now * 1000)).padStart(14, '0')}-${record.id}.json`);
    const kept: KeptRecord = { format: 1, keptAt: now, grouping, record, reason };
    const { default: writeFileAtomic } = await import('write-file-atomic');
  await writeFileAtomic(file, `${JSON.stringify(kept)}\n`, { mode: 0o600 });
    return file;
  }

  /**
   * The kept records, oldest first. A file that cannot be read as a record is moved to
   * `outbox/corrupt/` and reported, never dropped.
   */
  async list(): Promise<{ entries: OutboxEntry[]; corrupt: CorruptEntry[] }> {
    let names: string[];
    try {
      names = (await readdir(this.dir)).filter((name) => name.endsWith('.json')).sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [], corrupt: [] };
      throw error;
    }
    const entries: OutboxEntry[] = [];
    const corrupt: CorruptEntry[] = [];
    for (const name of names) {
      const file = join(this.dir, name);
      let problem: string;
      try {
        const kept = JSON.parse(await readFile(file, 'utf8')) as KeptRecord;
        if (kept.format === 1 && isGrouping(kept.grouping) && isRecord(kept.record)) {
          entries.push({ file, kept });
          continue;
        }
        problem = 'not a deployctl record';
      } catch (error) {
        const err = error as NodeJS.ErrnoException;
        if (err.code === 'ENOENT') continue; // sent by a concurrent flush
        problem = err instanceof SyntaxError ? 'not valid JSON' : (err.message.split('\n')[0] ?? 'unreadable');
      }
      const movedTo = join(this.dir, 'corrupt', name);
      await mkdir(join(this.dir, 'corrupt'), { recursive: true, mode: 0o700 });
      await rename(file, movedTo).catch(() => undefined);
      corrupt.push({ file, movedTo, problem });
    }
    return { entries, corrupt };
  }

  async holds(entry: OutboxEntry): Promise<boolean> {
    return access(entry.file).then(
      () => true,
      () => false,
    );
  }

  async remove(entry: OutboxEntry): Promise<void> {
    await rm(entry.file, { force: true });
  }
}
