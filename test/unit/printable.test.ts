import { describe, expect, it } from 'vitest';
import { printable } from '../../src/core/printable.js';

describe('printable', () => {
  it('escapes CR, ESC, BEL, other C0 and C1 controls, DEL and line separators; keeps tabs and ordinary text', () => {
    expect(printable('a\rb\x1b[2Jc\x07d\x00e\x7ff\x9bg\u2028h\ti é')).toBe(
      'a\\rb\\x1b[2Jc\\x07d\\x00e\\x7ff\\x9bg\\u2028h\ti é',
    );
  });

  it('escapes line feeds unless asked to keep them, so a server cannot start a line of its own', () => {
    expect(printable('x\n::set-output name=recorded::true')).toBe('x\\n::set-output name=recorded::true');
    expect(printable('x\ny', { lineFeeds: true })).toBe('x\ny');
  });
});
