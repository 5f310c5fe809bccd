import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { IncidentRecord, Target } from '../../../src/core/record.js';
import { Outbox } from '../../../src/recorder/outbox.js';

const target: Target = { backend: 'pushgateway', url: 'http://127.0.0.1:9091/' };
const grouping = { job: 'deployctl', service: 'api', environment: 'production' };
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('the outbox and incident records', () => {
  it('keeps an incident record and lists it back as it was, not quarantined', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'deployctl-outbox-'));
    dirs.push(dir);
    const outbox = new Outbox(dir);
    const records: IncidentRecord[] = [
      { kind: 'incident', id: 'inc-1', incident: '7a1c2b3d4e5f6071', action: 'open', at: 1796490000.123 },
      {
        kind: 'incident',
        id: 'inc-2',
        incident: '7a1c2b3d4e5f6071',
        action: 'resolve',
        at: 1796491800,
        openedAt: 1796490000.123,
      },
    ];
    for (const [i, record] of records.entries()) await outbox.keep(target, grouping, record, 1796492000 + i);
    const { entries, quarantined } = await outbox.list({ target });
    expect(quarantined).toEqual([]);
    expect(entries.map((e) => e.kept.record)).toEqual(records);
  });

  it('quarantines an incident record with an invalid action', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'deployctl-outbox-'));
    dirs.push(dir);
    const outbox = new Outbox(dir);
    const bad = {
      kind: 'incident',
      id: 'inc-3',
      incident: 'x',
      action: 'close',
      at: 1796490000,
    } as unknown as IncidentRecord;
    await outbox.keep(target, grouping, bad, 1796492000);
    const { entries, quarantined } = await outbox.list({ target });
    expect(entries).toEqual([]);
    expect(quarantined.map((q) => q.problem)).toEqual(['an incident with invalid fields']);
  });

  it('keeps an open with an attribution window in bounds, and quarantines one out of bounds, of the wrong type or on a resolve', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'deployctl-outbox-'));
    dirs.push(dir);
    const outbox = new Outbox(dir);
    const open = { kind: 'incident', incident: 'x', action: 'open', at: 1796490000 } as const;
    const good: IncidentRecord = { ...open, id: 'good', attributionWindowSeconds: 48 * 3600 };
    await outbox.keep(target, grouping, good, 1796492000);
    for (const [i, bad] of [
      { ...open, id: 'text', attributionWindowSeconds: '2h' },
      { ...open, id: 'negative', attributionWindowSeconds: -60 },
      { ...open, id: 'too-long', attributionWindowSeconds: 30 * 86400 },
      { ...open, id: 'null', attributionWindowSeconds: null },
      { ...open, id: 'on-resolve', action: 'resolve', attributionWindowSeconds: 3600 },
    ].entries())
      await outbox.keep(target, grouping, bad as unknown as IncidentRecord, 1796492001 + i);
    const { entries, quarantined } = await outbox.list({ target });
    expect(entries.map((e) => e.kept.record)).toEqual([good]);
    expect(quarantined.map((q) => q.problem)).toEqual(Array(5).fill('an incident with invalid fields'));
  });
});
