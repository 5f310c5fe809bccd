import chalk, { chalkStderr } from 'chalk';
import type { Settings } from './settings.js';

/** Where commands send what they have to say; tests can collect it instead of printing. */
export interface Reporter {
  /** The command's result for a person (stdout); nothing under --quiet or --json. */
  info(message: string): void;
  /** Something a person should know (stderr), even under --quiet. */
  warn(message: string): void;
  /** Detail under --verbose (stderr). */
  debug(message: string): void;
  /** Machine-readable result under --json (stdout). */
  json(value: unknown): void;
  /** Raw text that is the command's output (stdout), e.g. --dry-run's exposition. */
  raw(text: string): void;
}

/**
 * NO_COLOR (any non-empty value) turns colors off, on a terminal too; FORCE_COLOR wins over it
 * and is read by chalk itself. https://no-color.org
 */
export function colorsOff(env: Record<string, string | undefined>): boolean {
  return Boolean(env.NO_COLOR) && env.FORCE_COLOR === undefined;
}

export function consoleReporter(settings: Pick<Settings, 'json' | 'quiet' | 'verbose'>, env: Record<string, string | undefined> = process.env): Reporter {
  if (colorsOff(env)) {
    chalk.level = 0;
    chalkStderr.level = 0;
  }
  const err = chalkStderr;
  return {
    info: (message) => {
      if (!settings.quiet && !settings.json) process.stdout.write(`${message}\n`);
    },
    warn: (message) => process.stderr.write(`${err.yellow('deployctl: warning:')} ${message}\n`),
    debug: (message) => {
      if (settings.verbose) process.stderr.write(`${err.dim(`deployctl: ${message}`)}\n`);
    },
    json: (value) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`),
    raw: (text) => process.stdout.write(text),
  };
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Number(seconds.toFixed(seconds < 10 ? 2 : 1))}s`;
  const whole = Math.round(seconds);
  const minutes = Math.floor(whole / 60);
  if (minutes < 60) return `${minutes}m${whole % 60}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h${minutes % 60}m`;
  return `${Math.floor(hours / 24)}d${hours % 24}h`;
}

/** Lead times of the commits a deployment brought: each one when they are few, else their range and median. */
export function formatLeadTimes(seconds: readonly number[]): string {
  if (seconds.length <= 3) return `lead time ${seconds.map(formatDuration).join(', ')}`;
  const sorted = [...seconds].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  const median = sorted.length % 2 ? sorted[Math.floor(middle)]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return `lead time ${formatDuration(sorted[0]!)} to ${formatDuration(sorted.at(-1)!)} over ${sorted.length} commits, median ${formatDuration(median)}`;
}

export function formatAgo(seconds: number): string {
  return seconds < 1 ? 'just now' : `${formatDuration(seconds)} ago`;
}
