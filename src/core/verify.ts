import { UsageError } from './errors.js';
import type { VerificationResult } from './record.js';

/**
 * `deployctl verify`, the pure parts: checks and their bounds, the variables filled into queries,
 * judging one answer against a bound, and the verdict of several rounds. A gate never passes on
 * silence: a check that never had data, or a store that never answered, makes the verdict
 * inconclusive, not a pass.
 */

type Comparison = '<=' | '<' | '>=' | '>';

export interface Bound {
  op: Comparison;
  value: number;
}

export interface Check {
  name: string;
  /** PromQL, with $service, $environment and $version not yet filled in. */
  query: string;
  /** Every sample must keep all of them (a config check may give both max and min). */
  bounds: Bound[];
}

const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const BOUND_AT_END = /^([\s\S]*?)\s*(<=|>=|<|>)\s*(\S+)\s*$/;

/** `EXPR <= N` (or `<`, `>=`, `>`) from --check: the bound is the last comparison, and its number must be a plain finite number. */
export function parseCheck(text: string, index: number): Check {
  const shown = JSON.stringify(text);
  const match = BOUND_AT_END.exec(text);
  if (!match)
    throw new UsageError(
      `--check ${shown} has no bound at its end`,
      "end it with <=, <, >= or > and a number, e.g. --check 'sum(rate(http_errors_total[5m])) <= 0.5'",
    );
  const [, query = '', op, number = ''] = match;
  if (!NUMBER.test(number) || !Number.isFinite(Number(number)))
    throw new UsageError(`--check ${shown}: the bound ${JSON.stringify(number)} is not a number`);
  if (query.trim() === '') throw new UsageError(`--check ${shown} has no query before its bound`);
  if (/(<=|>=|<|>|==|!=)\s*$/.test(query))
    throw new UsageError(`--check ${shown}: two comparisons at its end; give one bound`);
  return { name: `check ${index + 1}`, query: query.trim(), bounds: [{ op: op as Comparison, value: Number(number) }] };
}

/** A check of the config file's `verify.checks`: `{name, query, max?, min?}`, at least one bound. */
export function configCheck(entry: { name: string; query: string; max?: number; min?: number }, where: string): Check {
  const bounds: Bound[] = [];
  if (entry.max !== undefined) bounds.push({ op: '<=', value: entry.max });
  if (entry.min !== undefined) bounds.push({ op: '>=', value: entry.min });
  if (bounds.length === 0) throw new UsageError(`${where}: a check needs max or min (or both)`);
  return { name: entry.name, query: entry.query, bounds };
}

export const formatBound = (bounds: readonly Bound[]) => bounds.map((b) => `${b.op} ${b.value}`).join(' and ');

/** A PromQL string literal's content: backslash and both quotes escaped, control characters as escapes. */
export function promqlEscape(value: string): string {
  return value.replace(
    /[\\"'\n\r\t]/g,
    (c) => ({ '\\': '\\\\', '"': '\\"', "'": "\\'", '\n': '\\n', '\r': '\\r', '\t': '\\t' })[c]!,
  );
}

/**
 * Fills `$service`, `$environment` and `$version` (also as `${service}`…) into a query, escaped for a
 * PromQL string. `$version` without a version is a usage error: a check must not silently match nothing.
 */
export function fillVariables(query: string, vars: { service: string; environment: string; version?: string }): string {
  return query.replace(/\$\{(service|environment|version)\}|\$(service|environment|version)\b/g, (_, a, b) => {
    const name = (a ?? b) as 'service' | 'environment' | 'version';
    const value = vars[name];
    if (value === undefined)
      throw new UsageError(
        `a check uses $${name} but no ${name} is known`,
        'give --version, or run it in the git checkout deployed',
      );
    return promqlEscape(value);
  });
}

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

export type CheckVerdict = 'pass' | 'fail' | 'no-data' | 'error';

function keeps(value: number, bound: Bound): boolean {
  if (Number.isNaN(value)) return false;
  switch (bound.op) {
    case '<=':
      return value <= bound.value;
    case '<':
      return value < bound.value;
    case '>=':
      return value >= bound.value;
    case '>':
      return value > bound.value;
  }
}

/** One answer against the bounds: every sample must keep every bound (NaN keeps none); no sample is no data. */
export function judge(samples: readonly Sample[], bounds: readonly Bound[]): 'pass' | 'fail' | 'no-data' {
  if (samples.length === 0) return 'no-data';
  return samples.every((s) => bounds.every((b) => keeps(s.value, b))) ? 'pass' : 'fail';
}

/** What one round found for one check (or the Alertmanager check). */
export interface CheckResult {
  name: string;
  verdict: CheckVerdict;
}

/**
 * A round fails when any of its checks failed. The verdict of several rounds: `fail` once a round
 * failed `failureLimit` times; otherwise `inconclusive` when some check never once gave an answer
 * that could be judged (no data or an error in every round), else `pass`.
 */
export function verdictOf(rounds: readonly (readonly CheckResult[])[], failureLimit = 1): VerificationResult {
  if (rounds.length === 0) return 'inconclusive';
  if (failedRounds(rounds) >= failureLimit) return 'fail';
  const names = new Set(rounds.flatMap((r) => r.map((c) => c.name)));
  for (const name of names) {
    const judged = rounds.some((r) => r.some((c) => c.name === name && (c.verdict === 'pass' || c.verdict === 'fail')));
    if (!judged) return 'inconclusive';
  }
  return 'pass';
}

export function failedRounds(rounds: readonly (readonly CheckResult[])[]): number {
  return rounds.filter((r) => r.some((c) => c.verdict === 'fail')).length;
}

const UNITS = { ms: 0.001, s: 1, m: 60, h: 3600 } as const;

/** A duration such as 30s, 5m, 1h, 1m30s or 0 (seconds), at most a day. */
export function parseVerifyDuration(what: string, value: string): number {
  const text = value.trim();
  if (/^\d+$/.test(text)) return bounded(what, value, Number(text));
  if (!/^(\d+(ms|s|m|h))+$/.test(text))
    throw new UsageError(`${what} must be a duration such as 30s, 5m or 1h, not ${JSON.stringify(value)}`);
  let seconds = 0;
  for (const [, n, unit] of text.matchAll(/(\d+)(ms|s|m|h)/g)) seconds += Number(n) * UNITS[unit as keyof typeof UNITS];
  return bounded(what, value, seconds);
}

function bounded(what: string, value: string, seconds: number): number {
  if (seconds > 86_400) throw new UsageError(`${what} must be at most 24h, not ${JSON.stringify(value)}`);
  return seconds;
}

/** How many rounds `--for` and `--interval` make: one at the start, then one every interval until `for` has passed. */
export function plannedRounds(forSeconds: number, intervalSeconds: number): number {
  if (forSeconds <= 0) return 1;
  return Math.floor(forSeconds / intervalSeconds) + 1;
}
