import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeFileDurably, writeFileDurablyInBackground } from '../../src/adapters/durable-file.js';

const dir = mkdtempSync(join(tmpdir(), 'deployctl-durable-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each([
  [
    'writeFileDurably',
    async (file: string, text: string, options?: { makeDir?: boolean }) => writeFileDurably(file, text, options),
  ],
  ['writeFileDurablyInBackground', writeFileDurablyInBackground],
])('%s', (name, write) => {
  it('writes the whole text, private, through a temporary file that does not stay', async () => {
    const file = join(dir, name, 'deep', 'record.json');
    await write(file, '{"a":"é"}\n', { makeDir: true });
    expect(readFileSync(file, 'utf8')).toBe('{"a":"é"}\n');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    await write(file, 'second\n');
    expect(readFileSync(file, 'utf8')).toBe('second\n');
    expect(readdirSync(join(dir, name, 'deep'))).toEqual(['record.json']);
  });

  it('fails whole when the file cannot be put in place, and leaves no temporary file', async () => {
    const where = join(dir, `${name}-blocked`);
    mkdirSync(join(where, 'record.json'), { recursive: true }); // a directory where the file would go
    await expect(Promise.resolve().then(() => write(join(where, 'record.json'), 'x'))).rejects.toThrow(
      /EISDIR|EEXIST|ENOTEMPTY/,
    );
    expect(readdirSync(where)).toEqual(['record.json']);
    await expect(Promise.resolve().then(() => write(join(dir, 'missing', 'record.json'), 'x'))).rejects.toThrow(
      /ENOENT/,
    );
  });
});
