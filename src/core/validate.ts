import { UsageError } from './errors.js';
import { ATTRIBUTION_WINDOW_BOUNDS } from './failed-change.js';
import { MAX_DURATION_SECONDS } from './families.js';
import { STATUSES, type Status } from './record.js';

/** Labels that deployctl sets itself or that Prometheus and the gateway reserve. */
const RESERVED_LABELS = new Set([
  'job',
  'instance',
  'service',
  'environment',
  'status',
  'version',
  'commit',
  'step',
  'le',
  'quantile',
]);

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const MAX_VALUE_LENGTH = 1024;
// C0 and C1 control characters, DEL, and lone surrogates that cannot be sent as UTF-8.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function describe(value: string): string {
  return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
}

/** A label value (service, environment, version, …): any UTF-8 text without control characters. */
export function parseLabelValue(what: string, value: string, { allowEmpty = false } = {}): string {
  if (!allowEmpty && value.trim() === '') {
    throw new UsageError(`${what} must not be empty`);
  }
  if (value.length > MAX_VALUE_LENGTH) {
    throw new UsageError(`${what} is ${value.length} characters long; the limit is ${MAX_VALUE_LENGTH}`);
  }
  if (CONTROL.test(value)) {
    throw new UsageError(`${what} ${describe(value)} contains a control character (newline, tab, …)`);
  }
  if (LONE_SURROGATE.test(value) || value.includes('\ufffd')) {
    throw new UsageError(`${what} ${describe(value)} is not valid UTF-8`);
  }
  return value;
}

export function parseStatus(value: string): Status {
  if ((STATUSES as readonly string[]).includes(value)) return value as Status;
  throw new UsageError(`--status must be one of ${STATUSES.join(', ')}, not ${describe(value)}`);
}

export function parseLabelName(name: string, where = '--label'): string {
  if (!LABEL_NAME.test(name) || name.startsWith('__')) {
    throw new UsageError(
      `${where}: ${describe(name)} is not a valid label name`,
      'label names start with a letter or _, continue with letters, digits and _, and do not start with __',
    );
  }
  if (RESERVED_LABELS.has(name)) {
    throw new UsageError(`${where}: the label name ${describe(name)} is reserved by deployctl`);
  }
  return name;
}

/** `key=value` pairs from repeated --label flags. */
export function parseLabels(pairs: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--label ${describe(pair)} must have the form key=value`);
    const name = parseLabelName(pair.slice(0, eq));
    if (name in labels) throw new UsageError(`--label ${name} is given twice`);
    labels[name] = parseLabelValue(`--label ${name}`, pair.slice(eq + 1), { allowEmpty: true });
  }
  return labels;
}

const NUMBER = /^(?:\d+(?:\.\d*)?|\.\d+)$/;

export function parseSeconds(what: string, value: string): number {
  const text = value.trim();
  if (!NUMBER.test(text)) {
    throw new UsageError(`${what} must be a number of seconds (0 or more), not ${describe(value)}`);
  }
  const seconds = Number(text);
  if (!Number.isFinite(seconds)) throw new UsageError(`${what} ${describe(value)} is too large`);
  return seconds;
}

const DAY = 86_400;

function formatSeconds(seconds: number): string {
  return seconds >= DAY ? `${Number((seconds / DAY).toFixed(1))} days` : `${seconds} s`;
}

/** A deployment's duration, however it was given: finite, 0 or more, at most MAX_DURATION_SECONDS. */
export function checkDuration(what: string, seconds: number): number {
  if (!Number.isFinite(seconds) || seconds < 0) throw new UsageError(`${what}: ${seconds} is not a duration`);
  if (seconds > MAX_DURATION_SECONDS) {
    throw new UsageError(
      `${what}: a deployment that took ${formatSeconds(seconds)} is not plausible; the limit is ${formatSeconds(MAX_DURATION_SECONDS)}`,
      'check the unit (seconds) and the start time; a deployment still in progress is recorded with deployctl start and finish',
    );
  }
  return seconds;
}

const WINDOW_UNITS = { m: 60, h: 3600, d: DAY, w: 7 * DAY } as const;

/**
 * `--attribution-window`, `incident.attributionWindow`: how long after a deployment's finish an
 * incident is still attributed to it, such as 30m, 12h, 2d or 1w, from a minute to a week.
 */
export function parseAttributionWindow(what: string, value: string): number {
  const match = /^(\d+)(m|h|d|w)$/.exec(value.trim());
  const seconds = match ? Number(match[1]) * WINDOW_UNITS[match[2] as keyof typeof WINDOW_UNITS] : Number.NaN;
  if (!(seconds >= ATTRIBUTION_WINDOW_BOUNDS.min && seconds <= ATTRIBUTION_WINDOW_BOUNDS.max))
    throw new UsageError(
      `${what} must be a duration from 1m to 7d such as 4h, 2d or 1w, not ${describe(value)}`,
      'the default is 24h: an incident that opens within a day of a deployment makes it a failed change',
    );
  return seconds;
}

/** `--duration`: a number of seconds that a deployment can take. */
export function parseDuration(what: string, value: string): number {
  return checkDuration(what, parseSeconds(what, value));
}

const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;

/** 2000-01-01T00:00:00Z: nothing deployctl records happened before. */
const EARLIEST_TIMESTAMP = 946_684_800;
/** How far ahead of this machine's clock a time may be (clocks differ a little). */
const FUTURE_TOLERANCE_SECONDS = 5 * 60;

const TIMESTAMP_FORMATS =
  'accepted: Unix seconds (1767225600 or 1767225600.5), an ISO 8601 date (2026-01-01, UTC) or date and time ' +
  '(2026-01-01T12:00:00Z, 2026-01-01 12:00:00+02:00; without Z or an offset, local time)';

const iso = (seconds: number) => new Date(seconds * 1000).toISOString().replace(/\.000Z$/, 'Z');

function parseTimeText(what: string, value: string): number {
  const text = value.trim();
  if (NUMBER.test(text)) {
    const seconds = Number(text);
    if (Number.isFinite(seconds)) return seconds;
  }
  const match = ISO_8601.exec(text);
  if (match) {
    const [, year, month, day, hour = '00', minute = '00', second = '00'] = match;
    const daysInMonth = new Date(Date.UTC(Number(year), Number(month), 0)).getUTCDate();
    const inRange =
      Number(month) >= 1 &&
      Number(month) <= 12 &&
      Number(day) >= 1 &&
      Number(day) <= daysInMonth &&
      Number(hour) <= 23 &&
      Number(minute) <= 59 &&
      Number(second) <= 59;
    const ms = Date.parse(text.replace(' ', 'T').replace(',', '.'));
    if (inRange && Number.isFinite(ms)) return ms / 1000;
  }
  throw new UsageError(`${what} ${describe(value)} is not a timestamp`, TIMESTAMP_FORMATS);
}

/**
 * Unix seconds (integer or fractional) or ISO 8601; returns Unix seconds. A time before 2000 or
 * more than a few minutes after `now` (Unix seconds) is refused, and a number that reads as
 * milliseconds (or finer) is refused with a message that says so.
 */
export function parseTimestamp(what: string, value: string, now: number = Date.now() / 1000): number {
  const seconds = parseTimeText(what, value);
  const isNumber = NUMBER.test(value.trim());
  if (isNumber && seconds >= 1e11) {
    const divisor = seconds >= 1e17 ? 1e9 : seconds >= 1e14 ? 1e6 : 1e3;
    const unit = divisor === 1e9 ? 'nanoseconds' : divisor === 1e6 ? 'microseconds' : 'milliseconds';
    const asSeconds = Math.floor(seconds / divisor);
    throw new UsageError(
      `${what} ${describe(value)} looks like ${unit} since 1970, not seconds (as seconds it would be the year ${Math.floor(1970 + seconds / (365.2425 * DAY))}); in seconds it is ${asSeconds} (${iso(asSeconds)})`,
      TIMESTAMP_FORMATS,
    );
  }
  if (seconds < EARLIEST_TIMESTAMP) {
    throw new UsageError(
      `${what} ${describe(value)} is before 2000 (${isNumber ? iso(seconds) : 'too early'}); deployctl refuses it as a mistake`,
      TIMESTAMP_FORMATS,
    );
  }
  if (seconds > now + FUTURE_TOLERANCE_SECONDS) {
    throw new UsageError(
      `${what} ${describe(value)} is ${iso(seconds)}, in the future (this machine's clock says ${iso(Math.floor(now))})`,
      `times more than ${FUTURE_TOLERANCE_SECONDS / 60} minutes ahead are refused; check the value, its time zone and this machine's clock. ${TIMESTAMP_FORMATS}`,
    );
  }
  return seconds;
}
