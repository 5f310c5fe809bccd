// Writes the dashboards and rule files from scripts/assets/ (TypeScript, bundled here with esbuild).

import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';

// Inside the repository, so that the bundle's package imports resolve from node_modules.
const dir = 'node_modules/.cache/deployctl-assets';
mkdirSync(dir, { recursive: true });
const outfile = `${dir}/assets-${process.pid}.mjs`;
try {
  await build({
    entryPoints: ['scripts/assets/index.ts'],
    outfile,
    bundle: true,
    packages: 'external',
    format: 'esm',
    platform: 'node',
    logLevel: 'warning',
  });
  const { generateAssets } = await import(pathToFileURL(outfile).href);
  for (const { path, content } of generateAssets()) {
    writeFileSync(path, content);
    console.log(`wrote ${path}`);
  }
} finally {
  rmSync(outfile, { force: true });
}
