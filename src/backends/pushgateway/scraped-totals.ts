import { type EndpointTls, redactUrl } from '../../adapters/http-endpoint.js';
import { Prometheus } from '../../adapters/prometheus.js';
import { FAMILIES } from '../../core/families.js';
import type { Grouping } from '../../core/record.js';
import type { Gateway } from './client.js';
import { type Continued, continueTotals, quoted, snapshotState } from './lost-totals.js';
import { type GroupState, type Labels, scalarValue, totalsByStatus } from './model.js';

/** How far back Prometheus is asked for a group's totals. */
export const CONTINUE_WINDOW = '31d';
const WINDOW_SECONDS = 31 * 86_400;

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** Whether two URLs name the same host and port (every loopback name is one host). */
function sameHost(a: URL, b: URL): boolean {
  const port = (u: URL) => u.port || (u.protocol === 'https:' ? '443' : '80');
  const host = (u: URL) => (LOOPBACK.has(u.hostname) ? 'loopback' : u.hostname);
  return port(a) === port(b) && host(a) === host(b);
}

const q = (value: string) => JSON.stringify(value);

/** A PromQL selector for the series of one group (and more matchers). */
function selector(grouping: Grouping, matchers: Labels, first = ''): string {
  const labels = { job: grouping.job, service: grouping.service, environment: grouping.environment, ...matchers };
  return `{${first}${Object.entries(labels)
    .map(([name, value]) => `${name}=${q(value)}`)
    .join(', ')}}`;
}

/** What a Prometheus `/api/v1/targets` entry says. */
interface ApiTarget {
  labels: Labels;
  scrapePool: string;
  scrapeUrl: string;
  health: string;
  lastError: string;
  scrapeInterval?: string;
}

/** The scrape target of the gateway in Prometheus, and how its series are told from another gateway's. */
export interface GatewayTarget {
  scrapePool: string;
  health: string;
  lastError: string;
  /** The target's job and instance: the gateway's own metrics (process_start_time_seconds) carry them. */
  job: string;
  instance: string;
  /**
   * The target's other labels. Every series pushed to the gateway carries them once scraped: with
   * honor_labels the pushed job and the gateway's empty instance win over the target's, the rest
   * of the target's labels are added. They are what tells this gateway's series from another's.
   */
  matchers: Labels;
  intervalSeconds: number;
  /** Why this gateway's series cannot be told from another gateway's, when they cannot. */
  ambiguous?: string;
}

/** How to give each gateway's series a label of its own. */
export const TELL_APART_FIX =
  "give each gateway's scrape target a label of its own: relabel_configs: [{source_labels: [__address__], target_label: pushgateway}] (see examples/prometheus/prometheus.yml)";

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)/g;
const PART_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800, y: 31_536_000 };

/** A Prometheus duration such as 15s or 1m30s in seconds, or 15 when it says none. */
function durationSeconds(text: string | undefined): number {
  let seconds = 0;
  for (const [, amount, unit] of (text ?? '').matchAll(DURATION_PART)) seconds += Number(amount) * PART_SECONDS[unit!]!;
  return seconds > 0 ? seconds : 15;
}

/**
 * The scrape target of the gateway at `gatewayUrl` in Prometheus (the one whose scrape URL has its
 * host and port), or undefined when Prometheus has none. Its series are told from those of other
 * gateways (the targets that expose push_time_seconds: a gateway holding groups) by the target's
 * labels other than job and instance; when another gateway's target has the same ones, they cannot
 * be, and `ambiguous` says so.
 */
export async function findGatewayTarget(prometheus: Prometheus, gatewayUrl: URL): Promise<GatewayTarget | undefined> {
  const [{ activeTargets }, holding] = await Promise.all([
    prometheus.get<{ activeTargets: ApiTarget[] }>('/api/v1/targets', { state: 'active' }),
    prometheus.get<{ target: Labels }[]>('/api/v1/targets/metadata', { metric: 'push_time_seconds' }),
  ]);
  const mine = activeTargets.filter((t) => sameHost(new URL(t.scrapeUrl), gatewayUrl));
  const chosen = mine.find((t) => t.health === 'up') ?? mine[0];
  if (!chosen) return undefined;
  const { job = '', instance = '', ...matchers } = chosen.labels;
  const isMine = (labels: Labels) =>
    mine.some((t) => t.labels.job === labels.job && t.labels.instance === labels.instance);
  const lookalike = holding
    .map((m) => m.target)
    .find((labels) => !isMine(labels) && Object.entries(matchers).every(([name, value]) => labels[name] === value));
  const described = Object.keys(matchers).length
    ? `the same ${Object.entries(matchers)
        .map(([name, value]) => `${name}=${quoted(value)}`)
        .join(', ')}`
    : 'no label of their own';
  return {
    scrapePool: chosen.scrapePool,
    health: chosen.health,
    lastError: chosen.lastError,
    job,
    instance,
    matchers,
    intervalSeconds: durationSeconds(chosen.scrapeInterval),
    ...(lookalike && {
      ambiguous: `Prometheus also scrapes the gateway ${quoted(lookalike.instance ?? '')} (job ${quoted(lookalike.job ?? '')}), and the series of both carry ${described}: nothing tells them apart`,
    }),
  };
}

/** What the gateway's /api/v1/status says: its flags, and when its process started (Unix seconds). */
export interface GatewayStatus {
  flags?: Record<string, string>;
  startedAt?: number;
}

export async function gatewayStatus(gateway: Gateway): Promise<GatewayStatus> {
  const response = await gateway.request('GET', '/api/v1/status');
  if (response.status !== 200) return {};
  try {
    const { data } = JSON.parse(response.body) as { data?: { flags?: Record<string, string>; start_time?: string } };
    const started = Date.parse(data?.start_time ?? '');
    return {
      ...(data?.flags && { flags: data.flags }),
      ...(Number.isFinite(started) && { startedAt: started / 1000 }),
    };
  } catch {
    return {};
  }
}

/**
 * An earlier process of the gateway reported a process_start_time_seconds at least this far below
 * the start time the gateway reports now (both from the gateway machine's clock, through /proc and
 * through Go: they differ by a second or two for one process).
 */
const START_SLACK_SECONDS = 3;

const ms = (seconds: number) => `${Math.max(1, Math.round(seconds * 1000))}ms`;

/**
 * When Prometheus last scraped the gateway's previous process, before the one that runs now
 * started at `startedAt`: the timestamp of that scrape's samples, so that an instant query at it
 * sees exactly what that scrape brought. It is the latest process_start_time_seconds sample of the
 * target whose value is an earlier process's (timestamp() of a selector gives its samples' own
 * times), looked for in steps of the scrape interval over the last hour, else in steps of a
 * minute over CONTINUE_WINDOW and then finely around what those found. The steps run a minute past
 * now, so that the last scrape is seen however recent it is. Undefined: Prometheus saw no earlier
 * process of this gateway in CONTINUE_WINDOW.
 */
export async function lastScrapeBeforeStart(
  prometheus: Prometheus,
  target: GatewayTarget,
  startedAt: number,
  now: number,
): Promise<number | undefined> {
  const started = `process_start_time_seconds{job=${q(target.job)}, instance=${q(target.instance)}}`;
  const earlier = `(timestamp(${started}) and ${started} < ${startedAt - START_SLACK_SECONDS})`;
  const step = target.intervalSeconds;
  const margin = step + 60;
  const last = async (rangeSeconds: number, stepSeconds: number, until: number) => {
    const answer = await prometheus.query(
      `max(max_over_time(${earlier}[${ms(rangeSeconds)}:${ms(stepSeconds)}] @ ${until.toFixed(3)}))`,
    );
    const value = answer[0]?.value;
    return value !== undefined && Number.isFinite(value) ? value : undefined;
  };
  const recent = await last(3600 + margin, step, now + margin);
  if (recent !== undefined) return recent;
  const coarse = Math.max(step, 60);
  const rough = await last(WINDOW_SECONDS, coarse, now + margin);
  if (rough === undefined || coarse === step) return rough;
  return (await last(coarse + 3 * step, step, Math.min(now + margin, rough + coarse + 2 * step))) ?? rough;
}

/** Every series of the group that Prometheus scraped from the gateway at `at`. */
function scrapedAt(
  prometheus: Prometheus,
  grouping: Grouping,
  target: GatewayTarget,
  at: number,
  name = '__name__=~"deployctl_.+", ',
) {
  return prometheus.query(`${selector(grouping, target.matchers, name)} @ ${at.toFixed(3)}`);
}

/**
 * Whether Prometheus saw more of the group in CONTINUE_WINDOW than the gateway holds, from any
 * target (or from the one with these labels): a higher record sequence, or more deployments of a
 * status. Two small queries, on every record; only when they say yes is more asked.
 */
async function mayHaveLost(
  prometheus: Prometheus,
  grouping: Grouping,
  onGateway: GroupState,
  matchers: Labels = {},
): Promise<boolean> {
  const group = selector(grouping, matchers);
  const [sequence, byStatus] = await Promise.all([
    prometheus.query(`max(max_over_time(${FAMILIES.recordsApplied.name}${group}[${CONTINUE_WINDOW}]))`),
    prometheus.query(`max by (status) (max_over_time(${FAMILIES.deployments.name}${group}[${CONTINUE_WINDOW}]))`),
  ]);
  const held = scalarValue(onGateway.get(FAMILIES.recordsApplied.name)) ?? 0;
  if (sequence.some((s) => !(s.value <= held))) return true;
  const totals = totalsByStatus(onGateway.get(FAMILIES.deployments.name));
  return byStatus.some((s) => !(s.value <= (totals[s.labels.status ?? ''] ?? 0)));
}

interface Asking {
  prometheus: Prometheus;
  gateway: Gateway;
  debug?: (message: string) => void;
}

/**
 * The group as it should continue. Only a restart loses a group on the gateway; so when Prometheus
 * saw more of it than the gateway holds, the group is continued from what Prometheus scraped of it
 * from this very gateway (its scrape target's labels) in the gateway's last scrape before its
 * current process started, and only when those totals are above the gateway's and every value is
 * plausible (see snapshotState). A group that was gone from that scrape was deleted (retired), not
 * lost: nothing is continued.
 */
async function continueFromPrometheus(
  { prometheus, gateway, debug }: Asking,
  grouping: Grouping,
  onGateway: GroupState,
): Promise<Continued> {
  const unchanged = (...warnings: string[]): Continued => ({ state: onGateway, lowered: [], changed: [], warnings });
  if (!(await mayHaveLost(prometheus, grouping, onGateway))) return unchanged();
  const group = `${grouping.service} in ${grouping.environment}`;
  const shown = redactUrl(prometheus.base);
  const [target, { startedAt }] = await Promise.all([
    findGatewayTarget(prometheus, gateway.base),
    gatewayStatus(gateway),
  ]);
  if (!target) {
    debug?.(
      `Prometheus at ${shown} saw more of ${group} than the gateway holds, but has no scrape target for this gateway: not its totals`,
    );
    return unchanged();
  }
  if (!target.ambiguous && !(await mayHaveLost(prometheus, grouping, onGateway, target.matchers))) {
    debug?.(`the higher totals of ${group} that Prometheus saw are another gateway's: nothing was lost`);
    return unchanged();
  }
  if (target.ambiguous)
    return unchanged(
      `Prometheus at ${shown} saw more of ${group} than the gateway holds, but cannot tell what it scraped from this gateway: ${target.ambiguous}; the totals go on from what the gateway holds (${TELL_APART_FIX})`,
    );
  if (startedAt === undefined)
    return unchanged(
      `the gateway does not say when it started (/api/v1/status), so a restart that lost ${group} cannot be told from a delete; the totals go on from what the gateway holds`,
    );
  const now = Date.now() / 1000;
  const before = await lastScrapeBeforeStart(prometheus, target, startedAt, now);
  if (before === undefined) {
    debug?.(
      `Prometheus saw more of ${group} than the gateway holds, but not from this gateway before it restarted: nothing was lost`,
    );
    return unchanged();
  }
  const answer = await scrapedAt(prometheus, grouping, target, before);
  const { state: scraped, refused } = snapshotState(answer, { grouping, matchers: target.matchers, now });
  if (refused.length)
    return unchanged(
      `not continuing the totals of ${group} from Prometheus at ${shown}: it answered ${refused.slice(0, 3).join('; ')}${refused.length > 3 ? `; and ${refused.length - 3} more` : ''}. The totals go on from what the gateway holds`,
    );
  if (scraped.size === 0)
    debug?.(
      `${group} was not on the gateway when it last served Prometheus before its restart (deleted, not lost): nothing to continue`,
    );
  return continueTotals(onGateway, scraped);
}

export type Continuation = (grouping: Grouping, onGateway: GroupState) => Promise<Continued>;

export interface ContinuationOptions {
  /** The Prometheus that scrapes the gateway (--prometheus, DEPLOYCTL_PROMETHEUS_URL, `prometheus` in the config). */
  url: string | undefined;
  /** The CA to trust (and whether to verify) for an https Prometheus. */
  tls?: EndpointTls;
  gateway: Gateway;
  /**
   * The most time every question to Prometheus together may take in this process: a share of
   * --timeout, so that a slow or hanging Prometheus never costs a record its delivery.
   */
  budgetMs: number;
  debug?: (message: string) => void;
}

/**
 * The continuation for deliveries when a Prometheus is known. Prometheus failing never stops a
 * record: the gateway's state is used, and the problem is said once. Once Prometheus has failed or
 * its share of the budget is spent, it is not asked again in this process.
 */
export function prometheusContinuation({
  url,
  tls,
  gateway,
  budgetMs,
  debug,
}: ContinuationOptions): Continuation | undefined {
  if (!url) return undefined;
  let spentMs = 0;
  let failed = false;
  const said = new Set<string>();
  const once = (warnings: string[]) => warnings.filter((w) => !said.has(w) && said.add(w));
  return async (grouping, onGateway) => {
    const unchanged = (warnings: string[]): Continued => ({
      state: onGateway,
      lowered: [],
      changed: [],
      warnings: once(warnings),
    });
    const allowedMs = Math.floor(Math.min(budgetMs - spentMs, gateway.remainingMs() / 2));
    if (failed || allowedMs < 50) {
      debug?.('Prometheus is not asked whether the gateway lost totals: it failed, or its share of --timeout is spent');
      return unchanged([]);
    }
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const outOfTime = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(
          new Error(
            `Prometheus did not answer within ${(allowedMs / 1000).toFixed(1)} s, its share of --timeout (a third)`,
          ),
        );
      }, allowedMs);
    });
    const started = performance.now();
    try {
      const prometheus = new Prometheus(url, allowedMs, controller.signal, {}, tls);
      const continued = await Promise.race([
        continueFromPrometheus({ prometheus, gateway, ...(debug && { debug }) }, grouping, onGateway),
        outOfTime,
      ]);
      return { ...continued, warnings: once(continued.warnings) };
    } catch (error) {
      failed = true;
      return unchanged([
        `could not ask Prometheus whether the gateway lost totals of ${grouping.service} in ${grouping.environment}: ${(error as Error).message}; the totals go on from what the gateway holds`,
      ]);
    } finally {
      clearTimeout(timer);
      controller.abort();
      spentMs += performance.now() - started;
    }
  };
}
