import { cosmiconfig } from 'cosmiconfig';
import { UsageError } from '../errors.js';
import { validateConfig, type FileConfig } from './schema.js';

export interface LoadedConfig {
  config: FileConfig;
  /** The file it came from; undefined when there is none. */
  filepath?: string;
}

/**
 * Reads `--config PATH`, or searches the current directory for `.deployctlrc*`,
 * `deployctl.config.*` or a `deployctl` key in package.json, and validates it.
 */
export async function loadConfig(explicitPath: string | undefined, cwd: string): Promise<LoadedConfig> {
  const explorer = cosmiconfig('deployctl', { stopDir: cwd });
  let result: { config: unknown; filepath: string; isEmpty?: boolean } | null;
  try {
    result = explicitPath ? await explorer.load(explicitPath) : await explorer.search(cwd);
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new UsageError(`--config ${explicitPath}: no such file`);
    throw new UsageError(`cannot read the config file: ${err.message.split('\n')[0]}`);
  }
  if (!result || result.isEmpty) return { config: {}, ...(result && { filepath: result.filepath }) };
  const { config, problems } = validateConfig(result.config);
  if (!config) {
    const lines = problems.map((p) => `  ${p.key}: ${p.message}`).join('\n');
    throw new UsageError(`invalid config file ${result.filepath}:\n${lines}`);
  }
  return { config, filepath: result.filepath };
}
