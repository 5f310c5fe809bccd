import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SettingsError } from '../../core/errors.js';
import type { FileConfig } from './schema.js';

export interface LoadedConfig {
  config: FileConfig;
  /** The file it came from; undefined when there is none. */
  filepath?: string;
  /** Keys deployctl does not know: ignored, with a warning (a newer deployctl's config still works). */
  warnings: string[];
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
    throw new SettingsError(`cannot read the config file: ${err.message.split('\n')[0]}`);
  }
  if (!result || result.isEmpty) return { config: {}, warnings: [], ...(result && { filepath: result.filepath }) };
  const { config, problems, unknown } = validateConfig(result.config);
  if (!config) {
    const lines = problems.map((p) => `  ${p.key}: ${p.message}`).join('\n');
    throw new SettingsError(`invalid config file ${result.filepath}:\n${lines}`);
  }
  const warnings = unknown.map((key) => `${result.filepath}: ${key} is not a deployctl setting; ignored`);
  return { config, filepath: result.filepath, warnings };
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
