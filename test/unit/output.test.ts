import { describe, expect, it } from 'vitest';
import { formatDuration } from '../../src/output.js';

describe('formatDuration', () => {
  it.each([
    [0.0123, '0.01s'],
    [42, '42s'],
    [59.96, '60s'],
    [179.6, '3m0s'],
    [3599.7, '1h0m'],
    [7260, '2h1m'],
    [3 * 86400 + 7200, '3d2h'],
  ])('%d → %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });
});
