import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { writeFileDurably } from '../adapters/durable-file.js';

/** A loaded CommonJS file, and how to keep what V8 compiled of it for the next run. */
export interface Loaded<T> {
  exports: T;
  /** Writes V8's code for the file when the cache lacked it; call once the work is done, so lazily compiled functions are in it. */
  saveCache(): void;
}

type Env = Record<string, string | undefined>;

/** How many caches the folder keeps (one per deployctl build and Node version). */
const KEPT = 8;

/** The content hash of dist/cli.cjs, put here by the build; a cache is named after it. */
declare const __BUNDLE_ID__: string;

/** `$XDG_CACHE_HOME/deployctl` (else `~/.cache/deployctl`), or undefined without a home. */
export function compileCacheDir(env: Env = process.env): string | undefined {
  const base = env.XDG_CACHE_HOME || (env.HOME || homedir() ? join(env.HOME || homedir(), '.cache') : undefined);
  return base ? join(base, 'deployctl') : undefined;
}

/** Only a directory of this user that nobody else can write: a planted code cache would run as code. */
function trusted(dir: string): boolean {
  try {
    const info = statSync(dir);
    return (
      info.isDirectory() && (process.getuid === undefined || info.uid === process.getuid()) && (info.mode & 0o022) === 0
    );
  } catch {
    return false;
  }
}

/**
 * Loads a CommonJS file with V8's code cache, kept in the user's cache directory and named after
 * Node's version and the bundle's content (hashed by the build), so that a new Node or a new
 * deployctl never reads another's. The cache is made once the command has run, so that it holds
 * every function the command compiled; Node's own compile cache (module.enableCompileCache, Node
 * 22 and later) is made as a module is compiled, before its functions run, and so lacks most of
 * them. A cache that is not whole, not of this source or not the user's own is not used.
 */
/**
 * A cache file: a header, then V8's data. V8 itself checks little (release builds compare its
 * length, version and flags, not a checksum) and can crash or spin on damaged data, so the header
 * says which source it is of (size and modification time) and carries the data's length and a
 * CRC-32 of all of it (zlib's, native: well under a millisecond for a cache of a few megabytes),
 * so that no damage to any byte reaches V8: a damaged cache is refused, and rewritten after the run.
 */
const MAGIC = 0x39564344; // "DCV9" (a CRC-32 of the whole data; "DCV8" files had a sampled sum)
const HEADER = 28;

type Crc32 = (data: Buffer) => number;

/** zlib's crc32 (Node 20.15 and later), else a plain one over every byte. */
function checksum(data: Buffer): number {
  const native = (process.getBuiltinModule('node:zlib') as { crc32?: Crc32 }).crc32;
  if (native) return native(data) >>> 0;
  let crc = 0xffffffff;
  for (let at = 0; at < data.length; at++) {
    crc ^= data[at]!;
    for (let bit = 0; bit < 8; bit++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function withHeader(data: Buffer, source: { size: number; mtimeMs: number }): Buffer {
  const header = Buffer.alloc(HEADER);
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt32LE(data.length, 4);
  header.writeUInt32LE(checksum(data), 8);
  header.writeUInt32LE(source.size, 12);
  header.writeDoubleLE(source.mtimeMs, 16);
  header.writeUInt32LE(0, 24);
  return Buffer.concat([header, data]);
}

/** V8's data from a cache file, or undefined when it is not whole or not of this source. */
function dataOf(file: Buffer, source: { size: number; mtimeMs: number }): Buffer | undefined {
  if (file.length < HEADER || file.readUInt32LE(0) !== MAGIC || file.readUInt32LE(4) !== file.length - HEADER)
    return undefined;
  if (file.readUInt32LE(12) !== source.size || file.readDoubleLE(16) !== source.mtimeMs) return undefined;
  const data = file.subarray(HEADER);
  return checksum(data) === file.readUInt32LE(8) ? data : undefined;
}

/** The cache file's content, if it is a file of this user's that nobody else can write. */
function readOwn(path: string): Buffer | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const info = fstatSync(fd);
    if (!info.isFile() || (process.getuid !== undefined && info.uid !== process.getuid()) || (info.mode & 0o022) !== 0)
      return undefined;
    return readFileSync(fd);
  } catch {
    return undefined; // not there yet
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function load<T>(file: string, env: Env = process.env): Loaded<T> {
  const plain = (): Loaded<T> => ({ exports: createRequire(file)(file) as T, saveCache: () => undefined });
  const dir = compileCacheDir(env);
  // V8 checks a cache against the source's length only: the name must say which bundle it is of.
  if (!dir || env.NODE_DISABLE_COMPILE_CACHE || typeof __BUNDLE_ID__ !== 'string') return plain();
  const sourceFd = openSync(file, 'r');
  let source: string;
  let sourceInfo: { size: number; mtimeMs: number };
  try {
    sourceInfo = fstatSync(sourceFd);
    source = readFileSync(sourceFd, 'utf8');
  } finally {
    closeSync(sourceFd);
  }
  const name = `${process.version}-${process.arch}-${__BUNDLE_ID__}.v8`;
  const cacheFile = join(dir, name);
  const found = trusted(dir) ? readOwn(cacheFile) : undefined;
  const cachedData = found && dataOf(found, sourceInfo);
  // node:vm only here: Node 22 and later do not need it.
  const { Script } = process.getBuiltinModule('node:vm');
  const script = new Script(Module.wrap(source), { filename: file, ...(cachedData && { cachedData }) });
  const module = { exports: {} as T, filename: file, id: file, loaded: false };
  const wrapper = script.runInThisContext() as (
    exports: unknown,
    require: NodeJS.Require,
    module: unknown,
    filename: string,
    dirname: string,
  ) => void;
  wrapper.call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
  module.loaded = true;

  const stale = cachedData === undefined || script.cachedDataRejected === true;
  return {
    exports: module.exports,
    saveCache() {
      if (!stale) return;
      try {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        if (!trusted(dir)) return;
        // Whole or not at all, and on disk before it is in place: a crash never leaves half a cache.
        writeFileDurably(cacheFile, withHeader(script.createCachedData(), sourceInfo));
        // Two deployctl installs (global and a project's, say) keep a cache each; past KEPT
        // caches, the ones written longest ago go (earlier builds, earlier Node versions).
        const caches = readdirSync(dir)
          .filter((other) => other.endsWith('.v8'))
          .map((other) => ({ other, written: statSync(join(dir, other)).mtimeMs }))
          .sort((a, b) => b.written - a.written);
        for (const { other } of caches.slice(KEPT)) unlinkSync(join(dir, other));
      } catch {
        // a read-only or full disk: the next run compiles again
      }
    },
  };
}
