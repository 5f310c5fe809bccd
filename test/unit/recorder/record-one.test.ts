import { existsSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { GroupRecord } from '../../../src/core/record.js';
import { acquireGroupLock } from '../../../src/recorder/lock.js';
import { recordOne } from '../../../src/recorder/record-one.js';
import { api, deferred, deployment, setup, web } from './fakes.js';

let env: ReturnType<typeof setup>;
afterEach(() => env?.cleanUp());

describe('recordOne', { timeout: 2000 }, () => {
  it('keeps the record ahead of its delivery, holds the early lock and read when the record is made in time, and removes it once delivered', async () => {
    env = setup();
    const durable: boolean[] = [];
    const outcome = await recordOne(env.context, api, deployment('new'), { onDurable: (kept) => durable.push(kept) });
    expect(outcome.delivered).toBe(true);
    expect(outcome.failure).toBeUndefined();
    expect(outcome.keptIn).toMatch(/-new\.json$/);
    expect(durable).toEqual([true]);
    expect(env.backends.opened).toHaveLength(1);
    expect(env.backends.opened[0]!.prepared).toEqual([{ grouping: api, dropped: false }]);
    expect(env.backends.opened[0]!.closed).toBe(true);
    expect(env.backends.attempts.map((a) => [a.id, a.options.readBack])).toEqual([['new', false]]);
    expect(env.kept()).toEqual([]);
    expect(outcome.backlog).toEqual({ sent: 0, remaining: 0, quarantined: [], otherTargets: 0 });
  });

  it("sends the group's older kept records first, oldest first, with half the budget", async () => {
    env = setup({ timeoutSeconds: 2 });
    await env.keep(api, 'old1', { ageSeconds: 120 });
    await env.keep(api, 'old2', { ageSeconds: 60 });
    const waits: string[] = [];
    const outcome = await recordOne(env.context, api, deployment('new'), { waitingFor: (what) => waits.push(what) });
    expect(env.backends.attempts.map((a) => [a.id, a.budgetMs])).toEqual([
      ['old1', 1000],
      ['old2', 1000],
      ['new', 2000],
    ]);
    expect(waits[0]).toContain('to take 2 record(s) kept earlier (at most 1s)');
    // the early read was made before the backlog changed the group
    expect(env.backends.opened[0]!.prepared).toEqual([{ grouping: api, dropped: true }]);
    expect(outcome.delivered).toBe(true);
    expect(outcome.backlog.sent).toBe(2);
    expect(outcome.backlog.remaining).toBe(0);
    expect(env.kept()).toEqual([]);
  });

  it('leaves the rest of a backlog kept when it would take longer than half the budget, and still delivers the new record', async () => {
    env = setup({ timeoutSeconds: 2 });
    for (const [index, id] of ['old1', 'old2', 'old3', 'old4'].entries()) {
      await env.keep(api, id, { ageSeconds: 100 - index });
      env.backends.behaviours.set(id, { costMs: 475 });
    }
    const outcome = await recordOne(env.context, api, deployment('new'));
    // 1000 ms for the backlog: after two records 50 ms are left, too few to try a third
    expect(env.backends.attempts.map((a) => a.id)).toEqual(['old1', 'old2', 'new']);
    expect(outcome.delivered).toBe(true);
    expect(outcome.backlog.sent).toBe(2);
    expect(outcome.backlog.remaining).toBe(2);
    expect(env.kept()).toEqual(['old3', 'old4']);
  });

  it('stops draining the backlog at an unreachable backend: later records untried, all kept', async () => {
    env = setup();
    await env.keep(api, 'old1', { ageSeconds: 3 });
    await env.keep(api, 'old2', { ageSeconds: 2 });
    await env.keep(api, 'old3', { ageSeconds: 1 });
    env.backends.unreachable = true;
    const outcome = await recordOne(env.context, api, deployment('new'));
    expect(env.backends.attempts.map((a) => a.id)).toEqual(['old1', 'new']);
    expect(outcome.delivered).toBe(false);
    expect(outcome.failure?.message).toMatch(/ECONNREFUSED/);
    expect(outcome.backlog).toMatchObject({ sent: 0, remaining: 4 });
    expect(env.kept()).toEqual(['old1', 'old2', 'old3', 'new']);
  });

  it('reports a record another deployctl sent while this one waited for the group, and sends nothing twice', async () => {
    env = setup();
    const other = await acquireGroupLock(env.stateDir, api, 0);
    const durable = deferred();
    const waits: string[] = [];
    const recording = recordOne(env.context, api, deployment('new'), {
      onDurable: () => durable.resolve(),
      waitingFor: (what) => waits.push(what),
    });
    await durable.promise;
    // The other process delivers the record and removes its file, then lets the group go.
    const [file] = readdirSync(env.outbox.dir).filter((name) => name.endsWith('.json'));
    unlinkSync(join(env.outbox.dir, file!));
    await other.release();
    const outcome = await recording;
    expect(waits[0]).toMatch(/another deployctl on this machine to finish with api in production/);
    expect(outcome.delivered).toBe(true);
    expect(outcome.sentByAnother).toBe(true);
    expect(outcome.delivery).toBeUndefined();
    expect(env.backends.attempts).toEqual([]);
    expect(env.kept()).toEqual([]);
  });

  it('sends again a record stored without a read-back that another writer replaced; a held one goes', async () => {
    env = setup();
    env.backends.storesUnconfirmed = true;
    const replaced = await env.keep(api, 'replaced', { ageSeconds: 20 });
    const held = await env.keep(api, 'held', { ageSeconds: 10 });
    await env.outbox.markSent(replaced, 7);
    await env.outbox.markSent(held, 8);
    env.backends.verdicts.set('replaced', 'replaced');
    const outcome = await recordOne(env.context, api, deployment('new'));
    expect(env.backends.attempts.map((a) => [a.id, a.options.confirm])).toEqual([
      [
        'new',
        [
          { id: 'replaced', sequence: 7 },
          { id: 'held', sequence: 8 },
        ],
      ],
      ['replaced', undefined],
    ]);
    expect(env.log.warnings).toEqual([
      expect.stringMatching(/^1 earlier record\(s\) of api in production were overwritten/),
    ]);
    expect(outcome.delivered).toBe(true);
    expect(outcome.backlog.sent).toBe(1);
    // Both stored again without a read-back: they wait for the next read of the group.
    expect(env.kept('sent')).toEqual(['replaced', 'new']);
    expect(env.kept()).toEqual([]);
  });

  it('lets the early lock and read go when the record takes longer than 250 ms to make, and still delivers it', async () => {
    env = setup();
    const pending = deferred<GroupRecord>();
    const letGo = deferred();
    env.backends.onOpen = (backend) => {
      if (env.backends.opened.length === 1) backend.onClose = () => letGo.resolve();
    };
    const recording = recordOne(env.context, api, pending.promise);
    await letGo.promise;
    expect(env.backends.opened[0]!.prepared).toEqual([{ grouping: api, dropped: true }]);
    // the group is free for others while the record is being made
    const lock = await acquireGroupLock(env.stateDir, api, 0);
    await lock.release();
    expect(env.kept()).toEqual([]);
    pending.resolve(deployment('slow'));
    const outcome = await recording;
    expect(outcome.delivered).toBe(true);
    expect(env.backends.opened).toHaveLength(2);
    expect(env.backends.opened[1]!.prepared).toEqual([]);
    expect(env.backends.delivered).toEqual(['slow']);
    expect(env.kept()).toEqual([]);
  });

  it('keeps a record whose delivery runs out of time', async () => {
    env = setup({ timeoutSeconds: 2 });
    env.backends.behaviours.set('new', { costMs: 5000 });
    const outcome = await recordOne(env.context, api, deployment('new'));
    expect(outcome.delivered).toBe(false);
    expect(outcome.failure?.message).toMatch(/timed out/);
    expect(outcome.keptIn).toBeDefined();
    expect(existsSync(outcome.keptIn!)).toBe(true);
    expect(outcome.backlog.remaining).toBe(1);
    expect(env.kept()).toEqual(['new']);
  });

  it('keeps a record when the budget is spent before it is sent, with its backlog untried', async () => {
    env = setup({ timeoutSeconds: 2 });
    await env.keep(api, 'old');
    // the budget is spent as soon as the backend opens, before anything is sent
    env.backends.onOpen = (backend) => {
      env.backends.clockMs += backend.budgetMs;
    };
    const outcome = await recordOne(env.context, api, deployment('new'));
    expect(env.backends.attempts.map((a) => a.id)).toEqual(['new']);
    expect(env.backends.delivered).toEqual([]);
    expect(outcome.delivered).toBe(false);
    expect(outcome.failure?.message).toMatch(/no time left/);
    expect(existsSync(outcome.keptIn!)).toBe(true);
    expect(outcome.backlog).toMatchObject({ sent: 0, remaining: 2 });
    expect(env.kept()).toEqual(['old', 'new']);
  });

  it("sends other groups' kept records after the new one, with what is left of the budget (at most 1 s)", async () => {
    env = setup({ timeoutSeconds: 5 });
    await env.keep(web, 'other');
    const outcome = await recordOne(env.context, api, deployment('new'));
    expect(env.backends.attempts.map((a) => [a.id, a.budgetMs])).toEqual([
      ['new', 5000],
      ['other', 1000],
    ]);
    expect(outcome.backlog).toMatchObject({ sent: 1, remaining: 0 });
    expect(env.kept()).toEqual([]);
  });

  it('under --dry-run shows the request and sends and keeps nothing', async () => {
    env = setup({ dryRun: true });
    const outcome = await recordOne(env.context, api, deployment('new'));
    expect(outcome.dryRun?.text).toMatch(/^POST http:\/\/gateway\.test:9091\/metrics\/job\/deployments/);
    expect(outcome.delivered).toBe(false);
    expect(env.backends.attempts).toEqual([]);
    expect(env.kept()).toEqual([]);
  });
});
