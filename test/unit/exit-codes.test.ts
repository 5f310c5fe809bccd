import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  deleteExitCode,
  doctorExitCode,
  EXIT_CODES,
  ExitCode,
  flushExitCode,
  recordExitCode,
  verifyExitCode,
} from '../../src/core/exit-codes.js';

/** The rows of the exit-code table in docs/failure-modes.md, between its markers. */
function documentedCodes(): { code: number; meaning: string }[] {
  const text = readFileSync(new URL('../../docs/failure-modes.md', import.meta.url), 'utf8');
  const block = text.slice(text.indexOf('<!-- exit-codes:begin -->'), text.indexOf('<!-- exit-codes:end -->'));
  return [...block.matchAll(/^\| (\d+) \| (.*) \|$/gm)].map((m) => ({ code: Number(m[1]), meaning: m[2]! }));
}

describe('exit codes', () => {
  it('are the table the docs show, code for code and word for word', () => {
    expect(documentedCodes()).toEqual(EXIT_CODES.map(({ code, meaning }) => ({ code, meaning })));
  });

  it('map outcomes as the table says', () => {
    expect(recordExitCode({ delivered: true }, true)).toBe(0);
    expect(recordExitCode({ delivered: false }, false)).toBe(0);
    expect(recordExitCode({ delivered: false }, true)).toBe(1);
    expect(recordExitCode({ delivered: false, dryRun: {} }, true)).toBe(0);
    expect(flushExitCode({ dryRun: false, stillKept: 0, quarantined: 0 })).toBe(0);
    expect(flushExitCode({ dryRun: false, stillKept: 2, quarantined: 0 })).toBe(1);
    expect(flushExitCode({ dryRun: false, stillKept: 0, quarantined: 1 })).toBe(1);
    expect(flushExitCode({ dryRun: true, stillKept: 2, quarantined: 1 })).toBe(0);
    expect(doctorExitCode(0)).toBe(0);
    expect(doctorExitCode(3)).toBe(1);
    expect(deleteExitCode(undefined)).toBe(0);
    expect(deleteExitCode('no')).toBe(1);
    expect(deleteExitCode('interrupted')).toBe(130);
    expect(verifyExitCode('pass')).toBe(0);
    expect(verifyExitCode('fail')).toBe(1);
    expect(verifyExitCode('inconclusive')).toBe(3);
    expect(ExitCode).toEqual({
      ok: 0,
      failure: 1,
      usage: 2,
      inconclusive: 3,
      cannotExecute: 126,
      notFound: 127,
      interrupted: 130,
    });
  });
});
