import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { GatewayError } from '../../../src/core/errors.js';
import type { Target } from '../../../src/core/record.js';
import { flushAll } from '../../../src/recorder/flush.js';
import { api, GATEWAY, setup, web } from './fakes.js';

const ELSEWHERE: Target = { backend: 'remote-write', url: 'http://store.test:8428/api/v1/write' };

let env: ReturnType<typeof setup>;
afterEach(() => env?.cleanUp());

describe('flushAll', { timeout: 2000 }, () => {
  it("sends each target's kept records with a read-back, and reports what remains and what failed", async () => {
    env = setup();
    await env.keep(api, 'a1', { ageSeconds: 40 });
    await env.keep(web, 'a2', { ageSeconds: 30 });
    await env.keep(api, 'b1', { ageSeconds: 20, target: ELSEWHERE });
    await env.keep(api, 'b2', { ageSeconds: 10, target: ELSEWHERE });
    env.backends.behaviours.set('b1', { fail: new GatewayError('the store refused it', 400) });
    const outcome = await flushAll(env.context);
    expect(env.backends.opened.map((b) => b.target)).toEqual([GATEWAY, ELSEWHERE]);
    expect(env.backends.opened.every((b) => b.closed)).toBe(true);
    // a refused record stays kept, and the next one is tried
    expect(env.backends.attempts.map((a) => [a.id, a.target.url, a.options.readBack])).toEqual([
      ['a1', GATEWAY.url, true],
      ['a2', GATEWAY.url, true],
      ['b1', ELSEWHERE.url, true],
      ['b2', ELSEWHERE.url, true],
    ]);
    expect(outcome.dryRun).toBe(false);
    expect(outcome.targets).toEqual([
      { target: GATEWAY, sent: 2, remaining: 0, failures: [], held: [], pending: [], configured: true },
      {
        target: ELSEWHERE,
        sent: 1,
        remaining: 1,
        failures: [
          {
            record: expect.objectContaining({ id: 'b1' }),
            grouping: api,
            failure: { message: 'the store refused it' },
          },
        ],
        held: [],
        pending: [],
        configured: false,
      },
    ]);
    expect(env.kept()).toEqual(['b1']);
  });

  it('puts a record refused for good apart, retries the others, and does not count it as still kept', async () => {
    env = setup();
    await env.keep(api, 'h1', { ageSeconds: 30 });
    await env.keep(api, 'h2', { ageSeconds: 20 });
    env.backends.behaviours.set('h1', {
      fail: new GatewayError('HTTP 404: 404 page not found', 404, false, undefined, 'permanent'),
    });
    const outcome = await flushAll(env.context);
    expect(outcome.targets).toEqual([expect.objectContaining({ sent: 1, remaining: 0, failures: [] })]);
    expect(outcome.targets[0]!.held.map((f) => [f.record.id, f.failure.permanent])).toEqual([['h1', true]]);
    expect(outcome.held).toBe(1);
    expect(env.kept()).toEqual([]);
    const held = await env.outbox.list({ held: true });
    expect(held.entries.map((e) => [e.kept.record.id, e.kept.held?.reason])).toEqual([
      ['h1', 'HTTP 404: 404 page not found'],
    ]);
    // A second flush does not try it again.
    const again = await flushAll(env.context);
    expect(again.targets).toEqual([]);
    expect(again.held).toBe(1);
    expect(env.backends.attempts.filter((a) => a.id === 'h1')).toHaveLength(1);
    // Moved to another URL: back in the outbox for that target, not held any more.
    const moved = await env.outbox.retarget(held.entries[0]!, ELSEWHERE);
    expect(moved.kept.held).toBeUndefined();
    expect((await env.outbox.list({ target: ELSEWHERE })).entries.map((e) => e.kept.record.id)).toEqual(['h1']);
    expect(await env.outbox.countHeld()).toBe(0);
  });

  it('stops at an unreachable backend: later records untried, all kept', async () => {
    env = setup();
    await env.keep(api, 'r1', { ageSeconds: 30 });
    await env.keep(api, 'r2', { ageSeconds: 20 });
    await env.keep(web, 'r3', { ageSeconds: 10 });
    env.backends.unreachable = true;
    const outcome = await flushAll(env.context);
    expect(env.backends.attempts.map((a) => a.id)).toEqual(['r1']);
    expect(outcome.targets).toEqual([expect.objectContaining({ sent: 0, remaining: 3 })]);
    expect(outcome.targets[0]!.failures.map((f) => [f.record.id, f.failure.message])).toEqual([
      ['r1', 'connect ECONNREFUSED'],
    ]);
    expect(env.kept()).toEqual(['r1', 'r2', 'r3']);
  });

  it('leaves records kept once 50 ms or less of the budget is left', async () => {
    env = setup({ timeoutSeconds: 1 });
    for (const [index, id] of ['t1', 't2', 't3'].entries()) {
      await env.keep(api, id, { ageSeconds: 10 - index });
      env.backends.behaviours.set(id, { costMs: 475 });
    }
    const outcome = await flushAll(env.context);
    expect(env.backends.attempts.map((a) => a.id)).toEqual(['t1', 't2']);
    expect(outcome.targets).toEqual([expect.objectContaining({ sent: 2, remaining: 1, failures: [] })]);
    expect(env.kept()).toEqual(['t3']);
  });

  it('confirms records stored without a read-back first: a held one goes, a replaced one is sent again', async () => {
    env = setup();
    const replaced = await env.keep(api, 'replaced', { ageSeconds: 20 });
    const held = await env.keep(api, 'held', { ageSeconds: 10 });
    await env.outbox.markSent(replaced, 3);
    await env.outbox.markSent(held, 4);
    env.backends.verdicts.set('replaced', 'replaced');
    const outcome = await flushAll(env.context);
    expect(env.backends.confirmed).toEqual([
      {
        target: GATEWAY,
        stored: [
          { id: 'replaced', sequence: 3 },
          { id: 'held', sequence: 4 },
        ],
      },
    ]);
    expect(env.backends.attempts.map((a) => a.id)).toEqual(['replaced']);
    expect(outcome.targets).toEqual([expect.objectContaining({ sent: 1, remaining: 0 })]);
    expect(env.kept('sent')).toEqual([]);
    expect(env.kept()).toEqual([]);
  });

  it('leaves a record in flight to another live process on this machine', async () => {
    env = setup();
    const entry = await env.keep(api, 'theirs', { ageSeconds: 0 });
    // kept a moment ago by a process that is still running (this one's parent)
    writeFileSync(entry.file, JSON.stringify({ ...JSON.parse(readFileSync(entry.file, 'utf8')), pid: process.ppid }));
    const outcome = await flushAll(env.context);
    expect(env.backends.attempts).toEqual([]);
    expect(outcome.targets).toEqual([expect.objectContaining({ sent: 0, remaining: 0 })]);
    expect(env.kept()).toEqual(['theirs']);
  });

  it('under --dry-run lists what would be sent, and sends, confirms and removes nothing', async () => {
    env = setup({ dryRun: true });
    const sent = await env.keep(api, 'stored', { ageSeconds: 20 });
    await env.outbox.markSent(sent, 1);
    await env.keep(api, 'k1', { ageSeconds: 10 });
    const outcome = await flushAll(env.context);
    expect(env.backends.opened).toEqual([]);
    expect(outcome).toEqual({
      dryRun: true,
      quarantined: [],
      held: 0,
      unread: 0,
      targets: [
        {
          target: GATEWAY,
          sent: 0,
          remaining: 1,
          failures: [],
          held: [],
          pending: [{ record: expect.objectContaining({ id: 'k1' }), grouping: api }],
          configured: true,
        },
      ],
    });
    expect(env.kept()).toEqual(['k1']);
    expect(env.kept('sent')).toEqual(['stored']);
  });
});
