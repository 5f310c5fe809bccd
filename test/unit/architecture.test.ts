import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = fileURLToPath(new URL('../../src', import.meta.url));

/** Every TypeScript file of src/, relative to it. */
function sourceFiles(dir = src): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [relative(src, path)] : [];
  });
}

/** The files of src/ a file imports: static, type-only, re-exports and dynamic import() alike. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(src, file), 'utf8');
  const specifiers = [
    ...text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s*'([^']+)'/gm),
    ...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g),
  ].map((m) => m[1]!);
  return specifiers
    .filter((s) => s.startsWith('.'))
    .map((s) => relative(src, resolve(dirname(join(src, file)), s)).replace(/\.js$/, '.ts'));
}

const graph = new Map(sourceFiles().map((file) => [file, importsOf(file)]));

/** The layers, lowest first: a file may import only from its own layer or one below. */
const LAYERS = ['core', 'adapters', 'backends', 'recorder', 'cli', 'action'];
const layerOf = (file: string) => LAYERS.indexOf(file.split('/')[0]!);

describe('the import graph of src/', () => {
  it('is read from every source file', () => {
    expect(graph.size).toBeGreaterThan(50);
    expect(graph.get('cli/cli.ts')).toContain('cli/options.ts');
    expect([...graph.keys()].every((file) => layerOf(file) >= 0)).toBe(true);
  });

  it('never imports from a higher layer (core ← adapters ← backends ← recorder ← cli ← action)', () => {
    const upward = [...graph].flatMap(([file, imports]) =>
      imports.filter((target) => layerOf(target) > layerOf(file)).map((target) => `${file} → ${target}`),
    );
    expect(upward).toEqual([]);
  });

  it('has no cycle, type imports and dynamic imports included', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...path.slice(path.indexOf(file)), file].join(' → '));
        return;
      }
      state.set(file, 'open');
      for (const target of graph.get(file) ?? []) visit(target, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of graph.keys()) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it('imports a backend folder only from src/backends/', () => {
    const reaching = [...graph].flatMap(([file, imports]) =>
      file.startsWith('backends/')
        ? []
        : imports.filter((target) => /^backends\/[^/]+\//.test(target)).map((target) => `${file} → ${target}`),
    );
    expect(reaching).toEqual([]);
  });

  it('picks the backend in one place: nothing outside the registry and the settings asks which is configured', () => {
    const asking = [...graph.keys()].filter((file) => {
      if (file.startsWith('backends/') || file === 'cli/settings.ts') return false;
      const text = readFileSync(join(src, file), 'utf8');
      return /settings\.remoteWrite|remoteWrite \?|\.backend === '/.test(text);
    });
    expect(asking).toEqual([]);
  });
});
