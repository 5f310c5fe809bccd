import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../../adapters/durable-file.js';
import { type Grouping, type GroupRecord, groupFileName } from '../../core/record.js';
import { ancestorsLabel, LEDGER, type PastEvent } from './ledger.js';
import type { TimeSeries } from './protobuf.js';

/** How many of its own recent records of a group this machine remembers. */
const REMEMBERED = 50;

/**
 * The records this machine wrote to a group lately. A store shows a new sample to queries only
 * after a while (VictoriaMetrics: seconds for a new series), so the next record of the same
 * group on this machine would not see the one before it; these records fill that gap.
 */
export class RecentRecords {
  private readonly file: string;

  constructor(stateDir: string, grouping: Grouping) {
    this.file = join(stateDir, 'remote-write', 'recent', `${groupFileName(grouping)}.json`);
  }

  async events(): Promise<PastEvent[]> {
    try {
      const parsed = JSON.parse(await readFile(this.file, 'utf8')) as unknown;
      return Array.isArray(parsed)
        ? (parsed as PastEvent[]).filter((e) => typeof e?.timestampMs === 'number' && typeof e.at === 'number')
        : [];
    } catch {
      return [];
    }
  }

  /** Remembers a record the store has taken, at the time of its samples; best effort, as the store holds the truth. */
  async remember(record: GroupRecord, samples: readonly TimeSeries[]): Promise<void> {
    const timestampMs = samples[0]?.samples[0]?.timestampMs;
    if (timestampMs === undefined) return;
    let event: PastEvent;
    if (record.kind === 'deployment') {
      event = {
        kind: 'deployment',
        at: record.finishedAt,
        timestampMs,
        status: record.status,
        commit: record.commit,
        version: record.version,
        ...(record.status === 'success' && record.commit && { ancestors: ancestorsLabel(record) }),
        ...(samples.some((s) => s.labels.some((l) => l.name === '__name__' && l.value === LEDGER.rollback)) && {
          rollback: true,
        }),
      };
    } else if (record.kind === 'start') {
      event = { kind: 'start', at: record.startedAt, timestampMs };
    } else if (record.kind === 'verification') {
      event = {
        kind: 'verification',
        at: record.finishedAt,
        timestampMs,
        result: record.result,
        startedAt: record.startedAt,
      };
    } else if (record.kind === 'incident') {
      event = {
        kind: 'incident',
        at: record.at,
        timestampMs,
        incident: record.incident,
        action: record.action,
        ...(record.attributionWindowSeconds !== undefined && { window: record.attributionWindowSeconds }),
      };
    } else {
      return;
    }
    try {
      const events = mergeEvents(await this.events(), [event]).slice(-REMEMBERED);
      writeFileDurably(this.file, JSON.stringify(events), { makeDir: true });
    } catch {
      // These records only bridge the store's lag.
    }
  }
}

/** Two views of a group's past, one event per sample time, oldest first. */
export function mergeEvents(a: readonly PastEvent[], b: readonly PastEvent[]): PastEvent[] {
  const byTime = new Map<string, PastEvent>();
  for (const event of [...a, ...b]) byTime.set(`${event.kind}@${event.timestampMs}@${event.incident ?? ''}`, event);
  return [...byTime.values()].sort((x, y) => x.timestampMs - y.timestampMs);
}
