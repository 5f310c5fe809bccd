import type { Destination } from '../backends/backend.js';
import type { RecorderContext } from '../recorder/context.js';
import type { Reporter } from './render/output.js';
import type { Settings } from './settings.js';

/** What every command gets from the CLI entry: resolved settings, somewhere to report, a clock. */
export interface CommandContext {
  settings: Settings;
  /** Where records go and are read back, built once from the settings. */
  destination: Destination;
  reporter: Reporter;
  /** Unix seconds. */
  now: () => number;
  env: Record<string, string | undefined>;
  cwd: string;
}

/** What the recorder gets of a command's context. */
export function recorderContext({ destination, reporter, now, settings }: CommandContext): RecorderContext {
  return { destination, log: reporter, now, dryRun: settings.dryRun };
}
