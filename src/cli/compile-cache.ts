import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

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
    return info.isDirectory() && (process.getuid === undefined || info.uid === process.getuid()) && (info.mode & 0o022) === 0;
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
 * them. Anything wrong with the cache costs only the time it would save.
 */
export function load<T>(file: string, env: Env = process.env): Loaded<T> {
  const plain = (): Loaded<T> => ({ exports: createRequire(file)(file) as T, saveCache: () => undefined });
  const dir = compileCacheDir(env);
  // V8 checks a cache against the source's length only: the name must say which bundle it is of.
  if (!dir || env.NODE_DISABLE_COMPILE_CACHE || typeof __BUNDLE_ID__ !== 'string') return plain();
  const source = readFileSync(file, 'utf8');
  const name = `${process.version}-${process.arch}-${__BUNDLE_ID__}.v8`;
  const cacheFile = join(dir, name);
  let cachedData: Buffer | undefined;
  if (trusted(dir)) {
    try {
      cachedData = readFileSync(cacheFile);
    } catch {
      // not there yet
    }
  }
  // node:vm only here: Node 22 and later do not need it.
  const { Script } = process.getBuiltinModule('node:vm');
  const script = new Script(Module.wrap(source), { filename: file, ...(cachedData && { cachedData }) });
  const module = { exports: {} as T, filename: file, id: file, loaded: false };
  const wrapper = script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: unknown, filename: string, dirname: string) => void;
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
        const temporary = `${cacheFile}.${process.pid}`;
        writeFileSync(temporary, script.createCachedData(), { mode: 0o600 });
        renameSync(temporary, cacheFile);
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
