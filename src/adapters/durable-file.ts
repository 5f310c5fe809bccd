import { closeSync, fsync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

interface Written {
  fd: number;
  temporary: string;
}

/** The text in a temporary file beside `file` (mode 0600, ignored by every reader: it does not end in .json), not yet fsynced. */
function writeTemporary(file: string, text: string | Uint8Array, makeDir: boolean): Written {
  if (makeDir) mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.${Math.floor(Math.random() * 0x100000000).toString(16)}.tmp`;
  const fd = openSync(temporary, 'wx', 0o600);
  try {
    writeFileSync(fd, text);
  } catch (error) {
    closeSync(fd);
    rmSync(temporary, { force: true });
    throw error;
  }
  return { fd, temporary };
}

/** After the fsync: the temporary file in place of `file`, or gone when anything failed. */
function putInPlace({ fd, temporary }: Written, file: string, syncError: unknown): void {
  try {
    closeSync(fd);
    if (syncError) throw syncError;
    renameSync(temporary, file);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

/**
 * Writes a file whole or not at all, and on disk before it returns: written to a temporary file,
 * fsynced, then renamed over the file. Synchronous on purpose: the files are small, and a trip
 * through libuv's thread pool per step costs more than the steps.
 */
export function writeFileDurably(
  file: string,
  text: string | Uint8Array,
  { makeDir = false }: { makeDir?: boolean } = {},
): void {
  const written = writeTemporary(file, text, makeDir);
  let syncError: unknown;
  try {
    fsyncSync(written.fd);
  } catch (error) {
    syncError = error;
  }
  putInPlace(written, file, syncError);
}

/**
 * The same, with the fsync (the one step that waits for the disk) in libuv's thread pool, so that
 * a request already under way goes on meanwhile; the file is in place and on disk when the
 * promise resolves.
 */
export function writeFileDurablyInBackground(
  file: string,
  text: string | Uint8Array,
  { makeDir = false }: { makeDir?: boolean } = {},
): Promise<void> {
  const written = writeTemporary(file, text, makeDir);
  return new Promise((resolve, reject) => {
    fsync(written.fd, (syncError) => {
      try {
        putInPlace(written, file, syncError);
        resolve();
      } catch (failure) {
        reject(failure);
      }
    });
  });
}
