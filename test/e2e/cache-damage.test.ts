import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { deployctl, deployments, gatewayEnv } from '../helpers/cli.js';
import { useGatewayAndWorkdir } from '../helpers/pushgateway.js';

const stack = useGatewayAndWorkdir();

/** A deterministic generator, so that a failing damage can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/**
 * The issue measured a damaged V8 code cache crashing every later deploy (exit 133/139) or spinning
 * for minutes. Every kind of damage here (one flipped bit at many offsets, header included, eight
 * flipped bytes, truncation, zeros, random bytes at the same size) leaves `run -- true` exiting 0
 * and recording, each run against a fresh copy of the damaged cache.
 */
describe('a damaged code cache', () => {
  it('never stops a deploy: every damage pattern tried, run -- true exits 0 and records', async () => {
    const cacheHome = join(stack.workdir.path, 'cache');
    const env = gatewayEnv(stack.gateway.url, join(stack.workdir.path, 'state'), { XDG_CACHE_HOME: cacheHome });
    const dir = join(cacheHome, 'deployctl');
    const run = () => deployctl(['run', '-s', 'cache', '-e', 'prod', '--', 'true'], { env, timeout: 30_000 });
    expect((await run()).exitCode).toBe(0);
    const [name] = readdirSync(dir);
    const file = join(dir, name!);
    const good = readFileSync(file);
    expect(good.length).toBeGreaterThan(10_000);
    const next = random(20);
    const at = () => Math.floor(next() * good.length);

    const damages: { what: string; make: () => Buffer }[] = [];
    const flip = (offsets: number[], bits = () => 1 << Math.floor(next() * 8)) => {
      const copy = Buffer.from(good);
      for (const offset of offsets) copy[offset]! ^= bits();
      return copy;
    };
    // One flipped bit: in the header (each of its 28 bytes' low bit every 4 bytes), and at spread offsets.
    for (let offset = 0; offset < 28; offset += 4)
      damages.push({ what: `bit at ${offset}`, make: () => flip([offset]) });
    for (let i = 0; i < 16; i++) {
      const offset = 28 + Math.floor(((good.length - 28) * i) / 16) + Math.floor(next() * 64);
      damages.push({ what: `bit at ${offset}`, make: () => flip([offset]) });
    }
    for (let i = 0; i < 4; i++)
      damages.push({
        what: '8 bytes',
        make: () => flip(Array.from({ length: 8 }, at), () => 1 + Math.floor(next() * 255)),
      });
    for (const keep of [0, 27, 28, Math.floor(good.length / 2), good.length - 1])
      damages.push({ what: `truncated to ${keep}`, make: () => good.subarray(0, keep) });
    for (const from of [28, Math.floor(good.length / 3), good.length - 4096])
      damages.push({
        what: `zeros from ${from}`,
        make: () => Buffer.concat([good.subarray(0, from), Buffer.alloc(good.length - from)]),
      });
    for (let i = 0; i < 3; i++)
      damages.push({
        what: 'random data, same size',
        make: () =>
          Buffer.concat([
            good.subarray(0, 28),
            Buffer.from(Array.from({ length: good.length - 28 }, () => Math.floor(next() * 256))),
          ]),
      });

    const failed: string[] = [];
    for (const damage of damages) {
      writeFileSync(file, damage.make());
      const result = await run();
      if (result.exitCode !== 0) failed.push(`${damage.what}: exit ${result.exitCode} ${result.stderr.slice(0, 200)}`);
    }
    expect(failed).toEqual([]);
    expect(await deployments(stack.gateway.url, 'cache', 'success')).toBe(damages.length + 1);
    // Rewritten whole after a damaged one was refused.
    const after = readFileSync(file);
    expect({
      magic: after.toString('latin1', 0, 4),
      length: after.readUInt32LE(4),
      crc: after.readUInt32LE(8),
    }).toEqual({ magic: 'DCV9', length: after.length - 28, crc: crc32(after.subarray(28)) });
  }, 300_000);
});
