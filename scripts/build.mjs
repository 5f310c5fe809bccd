// Bundles src/ into dist/ so that start-up loads few files and the package needs no runtime
// dependencies; type checking is `npm run typecheck`.
//   node scripts/build.mjs                 dist/ (the package's CLI) and dist/deployctl.mjs (one file, node alone)
//   node scripts/build.mjs --action        action/index.mjs, the GitHub Action (committed)
//   node scripts/build.mjs --check FILE    exit 1 unless FILE is what --action would write now

import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

/**
 * Node built-ins through require() rather than ESM import: an ESM import of a built-in builds its
 * whole namespace, which on Node 24 runs lazy getters (node:http's WebSocket: ~30 ms); require()
 * does not. The ESM builds get `require` from the banner.
 */
const escapeName = (name) => name.replace(/[/.]/g, (c) => `\\${c}`);
const builtinFilter = new RegExp(`^(node:)?(${builtinModules.map(escapeName).join('|')})$`);
const builtinsByRequire = {
  name: 'builtins-by-require',
  setup(b) {
    b.onResolve({ filter: builtinFilter }, (args) =>
      args.kind === 'import-statement' || args.kind === 'dynamic-import'
        ? { path: args.path.startsWith('node:') ? args.path : `node:${args.path}`, namespace: 'builtin' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'builtin' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
  },
};

/**
 * Large libraries only some commands use, each in a file of its own beside dist/cli.cjs, so that
 * `record` does not parse them: cosmiconfig and its YAML parser (a config file), env-ci
 * (metadata in CI), commander (help, mistakes and the commands that are not the everyday
 * recording ones: see src/cli/options.ts).
 */
const VENDOR = {
  commander: "export * from 'commander';",
  cosmiconfig: "export * from 'cosmiconfig';",
  // import() of a CommonJS file gives module.exports as the default: the function itself.
  'env-ci': "module.exports = require('env-ci').default;",
};
const vendorApart = {
  name: 'vendor-apart',
  setup(b) {
    b.onResolve({ filter: new RegExp(`^(${Object.keys(VENDOR).map(escape).join('|')})$`) }, (args) => ({
      path: `./${args.path}.cjs`,
      external: true,
    }));
  },
};

const common = {
  plugins: [builtinsByRequire],
  absWorkingDir: root,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  sourcemap: false,
  minify: true,
  keepNames: false,
  legalComments: 'none',
  logLevel: 'warning',
  define: { __DEPLOYCTL_VERSION__: JSON.stringify(pkg.version) },
  // cosmiconfig loads TypeScript config files only when `typescript` is installed.
  external: ['typescript'],
  // Bundled CommonJS dependencies call require() for Node built-ins and read __filename.
  banner: {
    js: [
      "import { createRequire as __createRequire } from 'node:module';",
      "import { fileURLToPath as __fileURLToPath } from 'node:url';",
      'const require = __createRequire(import.meta.url);',
      'const __filename = __fileURLToPath(import.meta.url);',
      "const __dirname = __fileURLToPath(new URL('.', import.meta.url));",
    ].join(' '),
  },
};

/** One file holding everything: no chunks beside it, nothing to install. */
const singleFile = (entry, outfile, shebang) => ({
  ...common,
  entryPoints: [entry],
  outfile,
  banner: { js: `${shebang ? '#!/usr/bin/env node\n' : ''}${common.banner.js}` },
});

const actionOptions = singleFile('src/action/main.ts', 'action/index.mjs', false);

const args = process.argv.slice(2);
if (args[0] === '--action') {
  await build(actionOptions);
} else if (args[0] === '--check') {
  const file = args[1] ?? 'action/index.mjs';
  const { outputFiles } = await build({ ...actionOptions, write: false });
  if (readFileSync(file, 'utf8') !== outputFiles[0].text) {
    process.stderr.write(`${file} is not current with src/: run npm run build:action and commit it\n`);
    process.exitCode = 1;
  }
} else {
  rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
  await Promise.all([
    // The package's CLI: one CommonJS file. Node loads it with one read and no ESM resolve/link
    // per chunk; a command's modules still run only when that command does (esbuild turns each
    // import() into a lazy initialiser), and built-ins come through require().
    build({
      ...common,
      plugins: [vendorApart],
      format: 'cjs',
      supported: { 'dynamic-import': false },
      entryPoints: ['src/cli/cli.ts'],
      outfile: 'dist/cli.cjs',
      banner: {},
    }),
    ...Object.entries(VENDOR).map(([name, contents]) =>
      build({
        ...common,
        plugins: [],
        format: 'cjs',
        stdin: { contents, resolveDir: root, loader: 'js' },
        outfile: `dist/${name}.cjs`,
        banner: {},
      }),
    ),
    build(singleFile('src/cli/bin.ts', 'dist/deployctl.mjs', true)),
  ]);
  // Loads dist/cli.cjs with V8's code cache (bin/deployctl); its own file, so that it is compiled
  // before the cache is read. The cache is named after the bundle's content, hashed here once.
  const bundleId = createHash('sha256')
    .update(readFileSync(new URL('../dist/cli.cjs', import.meta.url)))
    .digest('hex')
    .slice(0, 20);
  await build({
    ...common,
    plugins: [],
    format: 'cjs',
    entryPoints: ['src/cli/compile-cache.ts'],
    outfile: 'dist/compile-cache.cjs',
    banner: {},
    define: { ...common.define, __BUNDLE_ID__: JSON.stringify(bundleId) },
  });
}
