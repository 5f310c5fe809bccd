import { DeployctlError } from '../../core/errors.js';
import type { Grouping } from '../../core/record.js';
import type { Family, GroupState, HistogramSeries, Labels, MetricType, ScalarSeries } from './model.js';

interface ApiSeries {
  labels: Labels;
  value?: string;
  buckets?: Record<string, string>;
  sum?: string;
  count?: string;
}

interface ApiFamily {
  type: string;
  help?: string;
  metrics: ApiSeries[];
}

const GATEWAY_FAMILIES = new Set(['push_time_seconds', 'push_failure_time_seconds']);

function groupingLabels(grouping: Grouping): Labels {
  return { job: grouping.job, service: grouping.service, environment: grouping.environment };
}

function matchesGroup(labels: Labels, grouping: Grouping): boolean {
  const expected = groupingLabels(grouping);
  const names = Object.keys(labels);
  return names.length === 3 && names.every((name) => labels[name] === expected[name as keyof Labels]);
}

function ownLabels(labels: Labels, grouping: Labels): Labels {
  const own: Labels = {};
  for (const [name, value] of Object.entries(labels)) {
    if (name in grouping) continue;
    // The gateway adds an empty instance label to every series it serves.
    if (name === 'instance' && value === '') continue;
    own[name] = value;
  }
  return own;
}

function toNumber(text: string | undefined): number {
  const value = Number(text);
  return Number.isNaN(value) ? 0 : value;
}

function toFamily(name: string, apiFamily: ApiFamily, grouping: Labels): Family {
  const type = apiFamily.type.toLowerCase() as MetricType;
  const help = apiFamily.help ?? '';
  if (type === 'histogram') {
    const series: HistogramSeries[] = apiFamily.metrics.map((metric) => ({
      labels: ownLabels(metric.labels, grouping),
      buckets: Object.entries(metric.buckets ?? {})
        .filter(([le]) => le !== '+Inf')
        .map(([le, count]) => ({ le: Number(le), count: toNumber(count) }))
        .sort((a, b) => a.le - b.le),
      sum: toNumber(metric.sum),
      count: toNumber(metric.count),
    }));
    return { name, help, type, series };
  }
  if (type === 'counter' || type === 'gauge') {
    const series: ScalarSeries[] = apiFamily.metrics.map((metric) => ({
      labels: ownLabels(metric.labels, grouping),
      // A gauge may be NaN on purpose (a value that is not known); a counter never is.
      value: type === 'gauge' && metric.value?.toLowerCase() === 'nan' ? Number.NaN : toNumber(metric.value),
    }));
    return { name, help, type, series };
  }
  return { name, help, type: type === 'summary' ? 'summary' : 'untyped', series: [] };
}

export interface GroupEntry {
  labels: Labels;
  state: GroupState;
}

/** How the gateway's `GET /api/v1/metrics` answer begins. */
const GATEWAY_ANSWER = /^\s*\{\s*"status"\s*:\s*"success"\s*,\s*"data"\s*:\s*\[/;

function parseAnswer(body: string): Record<string, unknown>[] {
  let parsed: { status?: string; data?: Record<string, unknown>[] };
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    throw new DeployctlError(
      'the gateway answered /api/v1/metrics with something that is not JSON',
      1,
      'is --pushgateway the address of a Prometheus Pushgateway?',
    );
  }
  if (parsed === null || typeof parsed !== 'object' || parsed.status !== 'success' || !Array.isArray(parsed.data)) {
    throw new DeployctlError(
      'the gateway answered /api/v1/metrics without a list of groups',
      1,
      'is --pushgateway the address of a Prometheus Pushgateway?',
    );
  }
  return parsed.data;
}

function toState(group: Record<string, unknown>, labels: Labels): GroupState {
  const state: GroupState = new Map();
  for (const [name, value] of Object.entries(group)) {
    if (name === 'labels' || name === 'last_push_successful' || GATEWAY_FAMILIES.has(name)) continue;
    state.set(name, toFamily(name, value as ApiFamily, labels));
  }
  return state;
}

/** Every group the gateway holds, with its grouping labels. */
export function parseAllGroups(body: string): GroupEntry[] {
  return parseAnswer(body).map((group) => {
    const labels = (group.labels ?? {}) as Labels;
    return { labels, state: toState(group, labels) };
  });
}

/**
 * Finds one group in the gateway's `GET /api/v1/metrics` answer and returns its families.
 * A group that is not there yet is an empty state.
 */
export function parseGroupState(body: string, grouping: Grouping): GroupState {
  const group = parseAnswer(body).find((entry) => matchesGroup((entry.labels ?? {}) as Labels, grouping));
  return group ? toState(group, groupingLabels(grouping)) : new Map();
}

/** A string as the gateway's Go JSON encoder writes it (HTML characters and U+2028/9 escaped). */
export function goJsonString(value: string): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Index of the `{` that opens the object containing `from` (which is outside any string). */
function objectStart(body: Buffer, from: number): number {
  let depth = 0;
  let inString = false;
  for (let i = from - 1; i >= 0; i--) {
    const c = body[i]!;
    if (c === QUOTE) {
      let slashes = 0;
      while (body[i - 1 - slashes] === BACKSLASH) slashes++;
      if (slashes % 2 === 0) inString = !inString;
    } else if (!inString) {
      if (c === 0x7d || c === 0x5d)
        depth++; // } ]
      else if (c === 0x7b || c === 0x5b) {
        if (depth === 0) return i;
        depth--;
      }
    }
  }
  return -1;
}

/** Index of the `}` that closes the object containing `from` (which is outside any string). */
function objectEnd(body: Buffer, from: number): number {
  let depth = 0;
  let inString = false;
  for (let i = from; i < body.length; i++) {
    const c = body[i]!;
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === 0x7b || c === 0x5b)
      depth++; // { [
    else if (c === 0x7d || c === 0x5d) {
      if (depth === 0) return i;
      depth--;
    }
  }
  return -1;
}

/**
 * The state of one group from the gateway's `GET /api/v1/metrics` answer, without parsing the
 * rest: the group's labels object is found as bytes and only that group is parsed. At 10,000
 * groups the answer is about 18 MB; parsing it whole would cost time and a lot of memory.
 */
export function findGroupState(body: Buffer, grouping: Grouping): GroupState {
  // Anything else (an HTML sign-in page answered with 200, a proxy's error page) is a failed read,
  // never "the group is not there yet", which would start every total again from 0.
  if (!GATEWAY_ANSWER.test(body.toString('utf8', 0, 64))) parseAnswer(body.toString('utf8'));
  const labels = `{"environment":${goJsonString(grouping.environment)},"job":${goJsonString(grouping.job)},"service":${goJsonString(grouping.service)}}`;
  const at = body.indexOf(`"labels":${labels}`);
  if (at >= 0) {
    // The gateway writes each group as an object whose keys are sorted: one holding deployctl's
    // families begins with `{"deployctl_`, which no other object and no string can hold (a quote
    // in a string is escaped). That is where it starts; else (or if that is not it) a scan back.
    const first = body.lastIndexOf('{"deployctl_', at);
    const end = objectEnd(body, at);
    if (first >= 0 && end > first) {
      try {
        const group = JSON.parse(body.toString('utf8', first, end + 1)) as Record<string, unknown>;
        if (matchesGroup((group.labels ?? {}) as Labels, grouping)) return toState(group, groupingLabels(grouping));
      } catch {
        // not the start of the group: scan for it
      }
    }
    const start = objectStart(body, at);
    if (start >= 0 && end > start) {
      try {
        const group = JSON.parse(body.toString('utf8', start, end + 1)) as Record<string, unknown>;
        if (matchesGroup((group.labels ?? {}) as Labels, grouping)) return toState(group, groupingLabels(grouping));
      } catch {
        // fall through to the whole answer
      }
    }
  } else if (
    /^[\x20-\x7e]*$/.test(grouping.service) &&
    !/["\\<>&]/.test(grouping.service) &&
    body.indexOf(`"${grouping.service}"`) < 0
  ) {
    return new Map(); // a plain service name that appears nowhere: the group is not there yet
  }
  return parseGroupState(body.toString('utf8'), grouping);
}
