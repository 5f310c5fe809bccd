import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { newRecordId } from '../../src/adapters/random-id.js';
import { sha256Hex } from '../../src/core/sha256.js';

describe('sha256Hex', () => {
  it("gives node:crypto's digest for empty, block-edge, long and non-ASCII inputs", () => {
    const inputs = [
      '',
      'abc',
      'a'.repeat(55),
      'a'.repeat(56),
      'a'.repeat(63),
      'a'.repeat(64),
      'a'.repeat(1000),
      'shop/api ✓ "q" \\ ü 𝄞',
      '["deployctl","api","prod"]',
    ];
    for (let n = 0; n < 200; n++)
      inputs.push(
        Array.from({ length: n }, (_, i) => String.fromCodePoint(32 + ((i * 7919 + n * 104729) % 70000))).join(''),
      );
    for (const input of inputs)
      expect(sha256Hex(input), JSON.stringify(input)).toBe(createHash('sha256').update(input).digest('hex'));
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('newRecordId', () => {
  it('is a version 4 UUID, different every time', () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => newRecordId()));
    expect(ids.size).toBe(10_000);
    for (const id of [...ids].slice(0, 100))
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
