import type { Reporter } from './output.js';
import type { Settings } from './settings.js';

/** What every command gets from the CLI entry: resolved settings, somewhere to report, a clock. */
export interface CommandContext {
  settings: Settings;
  reporter: Reporter;
  /** Unix seconds. */
  now: () => number;
  env: Record<string, string | undefined>;
  cwd: string;
}
