import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SettingsError } from '../../core/errors.js';
import type { FileConfig, UnknownKey } from './schema.js';

export interface LoadedConfig {
  config: FileConfig;
  /** The file it came from; undefined when there is none. */
  filepath?: string;
  /** Keys deployctl does not know: ignored, with a warning (a newer deployctl's config still works). */
  warnings: string[];
  /** Those keys, each with the known key it may be a typo of. */
  unknownKeys?: UnknownKey[];
}

/**
 * The folders a config file is searched in: the current one and its parents up to the root of
 * the git repository (the folder holding .git), so that a run from a subfolder finds the
 * repository's config. Outside a repository, the current folder alone.
 */
function searchDirs(cwd: string): string[] {
  const dirs: string[] = [];
  for (let dir = cwd; ; dir = dirname(dir)) {
    dirs.push(dir);
    if (existsSync(join(dir, '.git'))) return dirs;
    if (dirname(dir) === dir) return [cwd];
  }
}

/**
 * Reads `--config PATH`, or searches from the current folder up to the repository root for
 * `.deployctlrc*`, `deployctl.config.*` or a `deployctl` key in package.json, and validates it.
 */
export async function loadConfig(explicitPath: string | undefined, cwd: string): Promise<LoadedConfig> {
  const dirs = searchDirs(cwd);
  // Most runs have no config file: look for one cheaply before loading cosmiconfig and the schema.
  if (!explicitPath && !(await someHaveConfig(dirs))) return { config: {}, warnings: [] };
  const [{ explorer: makeExplorer }, { validateConfig }] = await Promise.all([
    import('./explorer.js'),
    import('./schema.js'),
  ]);
  const explorer = makeExplorer(dirs.at(-1)!);
  let result: { config: unknown; filepath: string; isEmpty?: boolean } | null;
  try {
    result = explicitPath ? await explorer.load(explicitPath) : await explorer.search(cwd);
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new SettingsError(`config file ${explicitPath}: no such file`);
    throw new SettingsError(syntaxErrorMessage(error));
  }
  if (!result || result.isEmpty) return { config: {}, warnings: [], ...(result && { filepath: result.filepath }) };
  const { config, problems, unknown } = validateConfig(result.config);
  if (!config) {
    const lines = problems.map((p) => `  ${p.key}: ${p.message}`).join('\n');
    throw new SettingsError(`invalid config file ${result.filepath}:\n${lines}`);
  }
  const warnings = unknown.map(
    ({ key, suggestion }) =>
      `${result.filepath}: ${key} is not a deployctl setting; ignored${suggestion ? ` (did you mean ${suggestion}?)` : ''}`,
  );
  return { config, filepath: result.filepath, warnings, unknownKeys: unknown };
}

/**
 * A config file that does not parse, as `FILE:LINE:COLUMN: reason`: the YAML parser gives its
 * position; the JSON parser an offset in its message, turned into a line and column here.
 */
function syntaxErrorMessage(error: unknown): string {
  const err = error as Error & {
    filepath?: string;
    reason?: string;
    mark?: { line: number; column: number };
  };
  const file = err.filepath ?? 'the config file';
  if (err.mark && err.reason) return `${file}:${err.mark.line + 1}:${err.mark.column + 1}: ${err.reason}`;
  const json =
    /\n([^\n]*?) in JSON at position (\d+)/.exec(err.message) ?? /\n(Unexpected end of JSON input)/.exec(err.message);
  if (json && err.filepath) {
    let text = '';
    try {
      text = readFileSync(err.filepath, 'utf8');
    } catch {
      // gone since it was read: the offset alone is still worth showing
    }
    const { line, column } = lineAndColumn(text, json[2] === undefined ? text.length : Number(json[2]));
    return `${file}:${line}:${column}: ${json[1]}`;
  }
  const firstLine = err.message.split('\n').find((line) => line.trim() !== '' && !line.includes(' Error in ')) ?? '';
  return `cannot read the config file ${file}: ${firstLine.trim() || err.message.split('\n')[0]}`;
}

/** 1-based line and column of a character offset. */
function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf('\n') + 1;
  return { line: before.split('\n').length, column: offset - lineStart + 1 };
}

async function someHaveConfig(dirs: string[]): Promise<boolean> {
  for (const dir of dirs) if (await mayHaveConfig(dir)) return true;
  return false;
}

const names = (dir: string): string[] => {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
};

/** Whether cwd holds any file cosmiconfig would read for `deployctl` (its search places, cwd only). */
async function mayHaveConfig(cwd: string): Promise<boolean> {
  const entries = await names(cwd);
  if (entries.some((name) => name.startsWith('.deployctlrc') || name.startsWith('deployctl.config.'))) return true;
  if (entries.includes('.config') && (await names(join(cwd, '.config'))).some((name) => name.startsWith('deployctlrc')))
    return true;
  if (!entries.includes('package.json')) return false;
  try {
    return 'deployctl' in (JSON.parse(readFileSync(join(cwd, 'package.json'), 'utf8')) as object);
  } catch {
    return true; // let cosmiconfig report what is wrong with it
  }
}
