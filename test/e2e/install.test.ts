import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { scrape } from '../helpers/cli.js';
import { value } from '../helpers/exposition.js';
import { useGatewayAndWorkdir } from '../helpers/pushgateway.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  version: string;
  dependencies?: object;
  optionalDependencies?: object;
  peerDependencies?: object;
};
const context = useGatewayAndWorkdir();

/** Only PATH, HOME and what the test gives: no npm configuration or CI variables from outside. */
const scrubbed = (home: string, extra: Record<string, string> = {}) => ({
  PATH: process.env.PATH ?? '',
  HOME: home,
  NO_COLOR: '1',
  ...extra,
});

describe('the packed package', () => {
  it('has no runtime dependencies and no source maps, and installs and records with no network', async () => {
    expect(pkg.dependencies).toBeUndefined();
    expect(pkg.optionalDependencies).toBeUndefined();
    expect(pkg.peerDependencies).toBeUndefined();

    const dir = join(context.workdir.path, 'pack');
    mkdirSync(dir);
    // dist/ is already built by `npm test`; building again here would pull it from under the other test files.
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
      cwd: root,
    });
    const [packed] = JSON.parse(stdout) as { filename: string; size: number; files: { path: string }[] }[];
    const files = packed!.files.map((f) => f.path);
    expect(packed!.filename).toBe(`deployctl-${pkg.version}.tgz`);
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(files).toContain('bin/deployctl');
    expect(files).toContain('dist/cli.cjs');
    expect(files.filter((f) => f.startsWith('src/') || f.startsWith('test/'))).toEqual([]);
    expect(packed!.size).toBeLessThan(250_000);

    // An empty cache and --offline: npm may not fetch anything, so a dependency would fail the install.
    const prefix = join(context.workdir.path, 'prefix');
    const home = join(context.workdir.path, 'home');
    mkdirSync(home);
    const env = scrubbed(home, {
      npm_config_cache: join(context.workdir.path, 'npm-cache'),
      npm_config_offline: 'true',
    });
    await run(
      'npm',
      ['install', '--global', '--offline', '--no-audit', '--no-fund', '--prefix', prefix, join(dir, packed!.filename)],
      { env, cwd: home },
    );
    const installed = join(prefix, 'lib/node_modules/deployctl');
    expect(readdirSync(installed).sort()).toEqual([
      'CHANGELOG.md',
      'LICENSE',
      'README.md',
      'bin',
      'dist',
      'docs',
      'examples',
      'grafana-dashboards',
      'package.json',
    ]);
    expect(readdirSync(installed)).not.toContain('node_modules');

    const bin = join(prefix, 'bin/deployctl');
    expect((await run(bin, ['--version'], { env: scrubbed(home) })).stdout).toBe(`${pkg.version}\n`);
    const recorded = await run(
      bin,
      ['record', '--service', 'installed', '--env', 'prod', '--status', 'success', '--duration', '12'],
      {
        env: scrubbed(home, { DEPLOYCTL_PUSHGATEWAY_URL: context.gateway.url }),
        cwd: home,
      },
    );
    expect(recorded.stdout).toBe(
      'recorded success of installed in prod (took 12s); deployments now: success 1, failure 0, cancelled 0\n',
    );
    const samples = await scrape(context.gateway.url);
    const group = { job: 'deployctl', service: 'installed', environment: 'prod' };
    expect(value(samples, 'deployctl_deployments_total', { ...group, status: 'success' })).toBe(1);
    expect(value(samples, 'deployctl_deployment_duration_seconds_sum', { ...group, status: 'success' })).toBe(12);
  });
});

describe('the single-file build', () => {
  it('runs with node alone, copied into an empty folder, and records', async () => {
    const dir = join(context.workdir.path, 'single');
    mkdirSync(dir);
    copyFileSync(join(root, 'dist/deployctl.mjs'), join(dir, 'deployctl.mjs'));
    expect(readdirSync(dir)).toEqual(['deployctl.mjs']);

    const env = scrubbed(dir, { DEPLOYCTL_PUSHGATEWAY_URL: context.gateway.url });
    expect((await run(process.execPath, ['deployctl.mjs', '--version'], { env, cwd: dir })).stdout).toBe(
      `${pkg.version}\n`,
    );
    for (const status of ['failure', 'success']) {
      await run(
        process.execPath,
        ['deployctl.mjs', 'record', '--service', 'vendored', '--env', 'ci', '--status', status],
        { env, cwd: dir },
      );
    }
    const samples = await scrape(context.gateway.url);
    const group = { job: 'deployctl', service: 'vendored', environment: 'ci' };
    expect(value(samples, 'deployctl_deployments_total', { ...group, status: 'success' })).toBe(1);
    expect(value(samples, 'deployctl_deployments_total', { ...group, status: 'failure' })).toBe(1);
  });
});
