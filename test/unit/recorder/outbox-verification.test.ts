import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { VerificationRecord } from '../../../src/core/record.js';
import { Outbox } from '../../../src/recorder/outbox.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('the outbox and verification records', () => {
  const target = { backend: 'pushgateway' as const, url: 'http://127.0.0.1:9091/' };
  const grouping = { job: 'deployctl', service: 'api', environment: 'prod' };
  const record: VerificationRecord = {
    kind: 'verification',
    id: '3f0c6a52-9a43-4c8e-8d0e-3b1f7f0f2a11',
    result: 'fail',
    startedAt: 1_767_225_600,
    finishedAt: 1_767_225_900,
    timeFromClock: true,
  };

  it('keeps a verification to be sent later, and quarantines one with invalid fields', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'deployctl-outbox-'));
    dirs.push(dir);
    const outbox = new Outbox(dir);
    await outbox.keep(target, grouping, record, 1_767_225_901);
    await outbox.keep(
      target,
      grouping,
      { ...record, id: '4f0c6a52-9a43-4c8e-8d0e-3b1f7f0f2a11', result: 'maybe' } as never,
      1_767_225_902,
    );
    await outbox.keep(
      target,
      grouping,
      { ...record, id: '5f0c6a52-9a43-4c8e-8d0e-3b1f7f0f2a11', finishedAt: 1 },
      1_767_225_903,
    );
    const { entries, quarantined } = await outbox.list({ leaveInPlace: true });
    expect(entries.map((e) => e.kept.record)).toEqual([record]);
    expect(quarantined.map((q) => q.problem)).toEqual([
      'a verification with invalid fields',
      'a verification with invalid fields',
    ]);
  });
});
