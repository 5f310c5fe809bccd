import { closeSync, fsync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Writes a file whole or not at all, and on disk before it returns: a temporary file beside it
 * (mode 0600, ignored by every reader: it does not end in .json), written, fsynced, then renamed
 * over the file. Synchronous on purpose: a record is written ahead of its request, and nothing
 * else has to happen meanwhile that the request itself is not already waiting for.
 */
export function writeFileDurably(file: string, text: string | Uint8Array, { makeDir = false }: { makeDir?: boolean } = {}): void {
  if (makeDir) mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.${Math.floor(Math.random() * 0x100000000).toString(16)}.tmp`;
  let fd: number | undefined = openSync(temporary, 'wx', 0o600);
  try {
    writeFileSync(fd, text);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temporary, file);
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    rmSync(temporary, { force: true });
    throw error;
  }
}

/**
 * The same, with the fsync (the one step that waits for the disk) in libuv's thread pool, so that
 * a request already under way goes on meanwhile; the file is in place and on disk when the
 * promise resolves.
 */
export function writeFileDurablyInBackground(file: string, text: string, { makeDir = false }: { makeDir?: boolean } = {}): Promise<void> {
  if (makeDir) mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.${Math.floor(Math.random() * 0x100000000).toString(16)}.tmp`;
  const fd = openSync(temporary, 'wx', 0o600);
  const giveUp = (error: unknown) => {
    closeSync(fd);
    rmSync(temporary, { force: true });
    throw error;
  };
  try {
    writeFileSync(fd, text);
  } catch (error) {
    giveUp(error);
  }
  return new Promise((resolve, reject) => {
    fsync(fd, (error) => {
      try {
        if (error) giveUp(error);
        closeSync(fd);
      } catch (failure) {
        rmSync(temporary, { force: true });
        return reject(failure);
      }
      try {
        renameSync(temporary, file);
        resolve();
      } catch (failure) {
        rmSync(temporary, { force: true });
        reject(failure);
      }
    });
  });
}
