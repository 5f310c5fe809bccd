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

export function consoleReporter(settings: Pick<Settings, 'json' | 'quiet' | 'verbose'>): Reporter {
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

/** Rows as aligned columns; the header is dimmed on a terminal. */
export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [chalk.dim(line(headers)), ...rows.map(line)].join('\n');
}

export function formatAgo(seconds: number): string {
  return seconds < 1 ? 'just now' : `${formatDuration(seconds)} ago`;
}
