import { execFileSync } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { deployctl } from '../helpers/cli.js';
import { tempDir } from '../helpers/pushgateway.js';

const workdir = tempDir();
afterAll(() => workdir.remove());

describe('the code cache of the CLI bundle', () => {
  it('is written once to a private folder, used by later runs, and a broken or planted one changes nothing', async () => {
    const cacheHome = join(workdir.path, 'cache');
    const env = { XDG_CACHE_HOME: cacheHome };
    const dir = join(cacheHome, 'deployctl');
    const help = await deployctl(['record', '--help'], { env });
    expect(help.exitCode).toBe(0);
    const [file, ...more] = readdirSync(dir);
    expect(more).toEqual([]);
    expect(file).toMatch(new RegExp(`^${process.version.replace(/\./g, '\\.')}-${process.arch}-[0-9a-f]{20}\\.v8$`));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, file!)).mode & 0o777).toBe(0o600);
    const written = statSync(join(dir, file!)).mtimeMs;

    // Used, not written again.
    expect((await deployctl(['record', '--help'], { env })).stdout).toBe(help.stdout);
    expect(statSync(join(dir, file!)).mtimeMs).toBe(written);

    // Garbage in the cache: the run is the same, and the cache is written afresh.
    writeFileSync(join(dir, file!), 'not a code cache');
    expect(await deployctl(['record', '--help'], { env })).toEqual(help);
    const size = statSync(join(dir, file!)).size;
    expect(size).toBeGreaterThan(1000);

    // A cache cut short by a crash, or its tail zeroed at the same length (V8 alone would crash on it):
    // not used, written afresh, and the command runs as ever.
    const whole = () => {
      const cache = readFileSync(join(dir, file!));
      return (
        cache.toString('latin1', 0, 4) === 'DCV9' &&
        cache.readUInt32LE(4) === cache.length - 28 &&
        !cache.subarray(cache.length - 4096).equals(Buffer.alloc(4096))
      );
    };
    const damaged = readFileSync(join(dir, file!));
    writeFileSync(join(dir, file!), Buffer.concat([damaged.subarray(0, 4096), Buffer.alloc(damaged.length - 4096)]));
    expect(whole()).toBe(false);
    expect(await deployctl(['record', '--help'], { env })).toEqual(help);
    expect(whole()).toBe(true);
    writeFileSync(join(dir, file!), damaged.subarray(0, damaged.length - 100));
    expect(whole()).toBe(false);
    expect(await deployctl(['record', '--help'], { env })).toEqual(help);
    expect(whole()).toBe(true);

    // A folder others can write is never read from, nor written to.
    const shared = join(workdir.path, 'shared');
    mkdirSync(join(shared, 'deployctl'), { recursive: true });
    chmodSync(join(shared, 'deployctl'), 0o777);
    writeFileSync(join(shared, 'deployctl', file!), 'planted');
    expect(await deployctl(['record', '--help'], { env: { XDG_CACHE_HOME: shared } })).toEqual(help);
    expect(readdirSync(join(shared, 'deployctl'))).toEqual([file]);
    expect(statSync(join(shared, 'deployctl', file!)).size).toBe('planted'.length);
  });

  it("keeps a cache for each of two installs on one machine, instead of each writing over the other's", async () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const installs = ['one', 'two'].map((name) => {
      const dir = join(workdir.path, `install-${name}`);
      cpSync(join(root, 'bin'), join(dir, 'bin'), { recursive: true });
      cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
      cpSync(join(root, 'package.json'), join(dir, 'package.json'));
      return dir;
    });
    // The second install is another build: another bundle, named by another hash.
    const loader = join(installs[1]!, 'dist', 'compile-cache.cjs');
    writeFileSync(loader, readFileSync(loader, 'utf8').replace(/-[0-9a-f]{20}\.v8/, '-00000000000000000000.v8'));
    appendFileSync(join(installs[1]!, 'dist', 'cli.cjs'), '\n// another build\n');
    const env = { XDG_CACHE_HOME: join(workdir.path, 'two-installs') };
    const dir = join(env.XDG_CACHE_HOME, 'deployctl');
    const run = (install: string) =>
      execFileSync(process.execPath, [join(install, 'bin', 'deployctl'), 'record', '--help'], {
        env: { PATH: process.env.PATH, ...env },
      });
    for (const install of installs) run(install);
    const written = Object.fromEntries(readdirSync(dir).map((file) => [file, statSync(join(dir, file)).mtimeMs]));
    expect(Object.keys(written)).toHaveLength(2);
    for (const install of [...installs, ...installs]) run(install);
    expect(Object.fromEntries(readdirSync(dir).map((file) => [file, statSync(join(dir, file)).mtimeMs]))).toEqual(
      written,
    );
  });

  it('runs without one when the cache folder cannot be made, or when NODE_DISABLE_COMPILE_CACHE is set', async () => {
    const blocked = join(workdir.path, 'blocked');
    writeFileSync(blocked, 'a file where the cache folder would go');
    const plain = await deployctl(['--help'], { env: { XDG_CACHE_HOME: blocked } });
    expect(plain.exitCode).toBe(0);
    expect(plain.stderr).toBe('');
    const off = join(workdir.path, 'off');
    expect(await deployctl(['--help'], { env: { XDG_CACHE_HOME: off, NODE_DISABLE_COMPILE_CACHE: '1' } })).toEqual(
      plain,
    );
    expect(existsSync(join(off, 'deployctl'))).toBe(false);
  });
});
