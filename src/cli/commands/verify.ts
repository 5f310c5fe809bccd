import { Alertmanager } from '../../adapters/alertmanager.js';
import { redactUrl, trustOnly, urlBelow } from '../../adapters/http-endpoint.js';
import { collectMetadata } from '../../adapters/metadata/collect.js';
import { Prometheus } from '../../adapters/prometheus.js';
import { newRecordId } from '../../adapters/random-id.js';
import { SettingsError, UsageError } from '../../core/errors.js';
import { ExitCode, verifyExitCode } from '../../core/exit-codes.js';
import type { VerificationRecord, VerificationResult } from '../../core/record.js';
import { parseLabelName } from '../../core/validate.js';
import {
  type Check,
  type CheckResult,
  type CheckVerdict,
  configCheck,
  failedRounds,
  fillVariables,
  formatBound,
  judge,
  parseCheck,
  parseVerifyDuration,
  plannedRounds,
  type Sample,
  verdictOf,
} from '../../core/verify.js';
import type { CommandContext } from '../context.js';
import { sendRecord } from '../send-record.js';
import { requireTarget } from '../settings.js';

export interface VerifyFlags {
  check?: string[];
  alertmanager?: string;
  for?: string;
  interval?: string;
  initialDelay?: string;
  failureLimit?: string;
  version?: string;
}

const DEFAULT_FOR = '5m';
const DEFAULT_INTERVAL = '30s';
/** The name of the Alertmanager check in rounds and output. */
const ALERTS_CHECK = 'alerts';

/** One check in one round: what was asked, what came back, and how it was judged. */
export interface CheckMeasurement {
  name: string;
  query: string;
  bound: string;
  verdict: CheckVerdict;
  samples: Sample[];
  /** Why nothing could be judged (no answer, not an answer Prometheus gives). */
  error?: string;
  /** The Alertmanager check: the alerts firing. */
  alerts?: { name: string; labels: Record<string, string>; startsAt: string }[];
}

interface VerifyRound {
  round: number;
  /** Unix seconds. */
  at: number;
  checks: CheckMeasurement[];
}

export interface VerifyView {
  kind: 'verify';
  service: string;
  environment: string;
  prometheus: string | undefined;
  alertmanager: string | undefined;
  forSeconds: number;
  intervalSeconds: number;
  failureLimit: number;
  /** --dry-run: the filled queries and the Alertmanager request; nothing was queried. */
  dryRun?: { queries: { name: string; query: string; bound: string; request: string }[]; alertmanagerRequest?: string };
  rounds: VerifyRound[];
  result?: VerificationResult;
  /** Unix seconds. */
  startedAt: number;
  finishedAt: number;
}

/** Everything verify takes from its command line and config, checked before anything is asked. */
interface Plan {
  checks: Check[];
  forSeconds: number;
  intervalSeconds: number;
  initialDelaySeconds: number;
  failureLimit: number;
  alertmanager: string | undefined;
  labels: { service: string; environment: string };
}

/** Checks verify's own command line: a bad --check, duration or limit is exit 2 before anything is read. */
export function checkVerifyLine(flags: VerifyFlags): void {
  for (const [i, text] of (flags.check ?? []).entries()) parseCheck(text, i);
  if (flags.for !== undefined) parseVerifyDuration('--for', flags.for);
  if (flags.interval !== undefined && parseVerifyDuration('--interval', flags.interval) <= 0)
    throw new UsageError('--interval must be more than 0');
  if (flags.initialDelay !== undefined) parseVerifyDuration('--initial-delay', flags.initialDelay);
  if (flags.failureLimit !== undefined && !/^[1-9]\d{0,3}$/.test(flags.failureLimit))
    throw new UsageError(
      `--failure-limit must be a whole number from 1 to 9999, not ${JSON.stringify(flags.failureLimit)}`,
    );
}

function planOf(flags: VerifyFlags, context: CommandContext): Plan {
  const { settings } = context;
  const where = (key: string) => (settings.configFile ? `${key} in ${settings.configFile}` : key);
  const checks = (flags.check ?? []).map((text, i) => parseCheck(text, i));
  (settings.verify.checks ?? []).forEach((entry, i) => {
    try {
      checks.push(configCheck(entry, where(`verify.checks.${i}`)));
    } catch (error) {
      throw new SettingsError((error as Error).message);
    }
  });
  const names = new Set<string>([ALERTS_CHECK]);
  for (const check of checks) {
    if (names.has(check.name))
      throw new SettingsError(
        `two checks are named ${JSON.stringify(check.name)} (in verify.checks): give each its own name`,
      );
    names.add(check.name);
  }
  const alertmanager = flags.alertmanager ?? settings.verify.alertmanager;
  if (checks.length === 0 && alertmanager === undefined)
    throw new UsageError(
      'nothing to verify: give --check, --alertmanager, or verify.checks in the config file',
      'e.g. deployctl verify -s api -e prod --prometheus http://localhost:9090 --check \'sum(rate(http_errors_total{service="$service"}[5m])) <= 0.1\'',
    );
  if (checks.length > 0 && settings.prometheus === undefined)
    throw new UsageError('verify needs --prometheus (or DEPLOYCTL_PROMETHEUS_URL) to run its checks');
  const labelName = (key: 'serviceLabel' | 'environmentLabel', fallback: string) => {
    const value = settings.verify[key];
    if (value === undefined) return fallback;
    try {
      return parseLabelName(value, where(`verify.${key}`));
    } catch (error) {
      throw new SettingsError((error as Error).message);
    }
  };
  const forSeconds = parseVerifyDuration('--for', flags.for ?? DEFAULT_FOR);
  const intervalSeconds = parseVerifyDuration('--interval', flags.interval ?? DEFAULT_INTERVAL);
  const failureLimit = flags.failureLimit === undefined ? 1 : Number(flags.failureLimit);
  const rounds = plannedRounds(forSeconds, intervalSeconds);
  if (failureLimit > rounds)
    throw new UsageError(
      `--failure-limit ${failureLimit} can never be reached in the ${rounds} round(s) of --for ${flags.for ?? DEFAULT_FOR} --interval ${flags.interval ?? DEFAULT_INTERVAL}`,
    );
  return {
    checks,
    forSeconds,
    intervalSeconds,
    initialDelaySeconds:
      flags.initialDelay === undefined ? 0 : parseVerifyDuration('--initial-delay', flags.initialDelay),
    failureLimit,
    alertmanager,
    labels: {
      service: labelName('serviceLabel', 'service'),
      environment: labelName('environmentLabel', 'environment'),
    },
  };
}

/** Waits `seconds`, or until interrupted; true when interrupted. */
function pause(seconds: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', stop);
      resolve(false);
    }, seconds * 1000);
    const stop = () => {
      clearTimeout(timer);
      resolve(true);
    };
    signal.addEventListener('abort', stop, { once: true });
  });
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** What verify found, to be shown (render/verify.ts), and its exit code: the verdict. */
export interface VerifyOutcome {
  view: VerifyView;
  /** The recording's own JSON document, shown inside verify's under --json. */
  recording?: unknown;
  exitCode: number;
}

/** `deployctl verify`: runs the checks round after round; its exit code is the verdict. */
export async function verifyCommand(flags: VerifyFlags, context: CommandContext): Promise<VerifyOutcome> {
  const { settings, reporter, now, env, cwd } = context;
  checkVerifyLine(flags);
  const target = requireTarget(settings);
  const plan = planOf(flags, context);
  const usesVersion = plan.checks.some((c) => /\$\{?version\b/.test(c.query));
  const version =
    flags.version ??
    (usesVersion ? (await collectMetadata({}, env, cwd, reporter.warn)).version || undefined : undefined);
  const queries = plan.checks.map((c) => ({
    ...c,
    filled: fillVariables(c.query, { ...target, ...(version !== undefined && { version }) }),
  }));
  const timeoutMs = settings.timeoutSeconds * 1000;
  // Ctrl-C ends the round's requests too.
  const interrupt = new AbortController();
  const prometheus =
    settings.prometheus === undefined
      ? undefined
      : new Prometheus(settings.prometheus, timeoutMs, interrupt.signal, settings.queryAuth, settings.queryTls);
  // The CA to trust and --insecure hold for Alertmanager too; a client certificate is the backend's.
  const alertmanager =
    plan.alertmanager === undefined
      ? undefined
      : new Alertmanager(plan.alertmanager, timeoutMs, trustOnly(settings.tls));
  const match = { [plan.labels.service]: target.service, [plan.labels.environment]: target.environment };
  const startedAt = now();
  const view: VerifyView = {
    kind: 'verify',
    ...target,
    prometheus: prometheus && redactUrl(prometheus.base),
    alertmanager: alertmanager && redactUrl(alertmanager.base),
    forSeconds: plan.forSeconds,
    intervalSeconds: plan.intervalSeconds,
    failureLimit: plan.failureLimit,
    rounds: [],
    startedAt,
    finishedAt: startedAt,
  };

  if (settings.dryRun) {
    view.dryRun = {
      queries: queries.map((q) => ({
        name: q.name,
        query: q.filled,
        bound: formatBound(q.bounds),
        request: `GET ${redactUrl(urlBelow(prometheus!.base, '/api/v1/query'))}?query=${encodeURIComponent(q.filled)}`,
      })),
      ...(alertmanager && {
        alertmanagerRequest: `GET ${redactUrl(alertmanager.alertsUrl(match))}?${[...alertmanager.alertsUrl(match).searchParams].map(([k, v]) => `${k}=${v}`).join('&')}`,
      }),
    };
    return { view, exitCode: ExitCode.ok };
  }

  const onSigint = () => interrupt.abort();
  process.on('SIGINT', onSigint);
  try {
    if (plan.initialDelaySeconds > 0 && (await pause(plan.initialDelaySeconds, interrupt.signal))) {
      reporter.warn('interrupted: nothing was verified or recorded');
      return { view, exitCode: ExitCode.interrupted };
    }
    const total = plannedRounds(plan.forSeconds, plan.intervalSeconds);
    const began = Date.now();
    for (let round = 1; round <= total; round++) {
      const at = now();
      const measured = await Promise.all([
        ...queries.map(async (q): Promise<CheckMeasurement> => {
          const base = { name: q.name, query: q.filled, bound: formatBound(q.bounds) };
          try {
            const samples = await prometheus!.instant(q.filled);
            return { ...base, samples, verdict: judge(samples, q.bounds) };
          } catch (error) {
            return { ...base, samples: [], verdict: 'error', error: message(error) };
          }
        }),
        ...(alertmanager
          ? [
              (async (): Promise<CheckMeasurement> => {
                const base = {
                  name: ALERTS_CHECK,
                  query: Object.entries(match)
                    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
                    .join(', '),
                  bound: 'no alert firing',
                  samples: [],
                };
                try {
                  const firing = await alertmanager.firing(match);
                  return {
                    ...base,
                    verdict: firing.length > 0 ? 'fail' : 'pass',
                    alerts: firing.map(({ name, labels, startsAt }) => ({ name, labels, startsAt })),
                  };
                } catch (error) {
                  return { ...base, verdict: 'error', error: message(error) };
                }
              })(),
            ]
          : []),
      ]);
      if (interrupt.signal.aborted) break;
      view.rounds.push({ round, at, checks: measured });
      reporter.debug(`round ${round}/${total}: ${measured.map((m) => `${m.name} ${m.verdict}`).join(', ')}`);
      const results: CheckResult[][] = view.rounds.map((r) => r.checks.map(({ name, verdict }) => ({ name, verdict })));
      if (failedRounds(results) >= plan.failureLimit) break;
      if (round === total) break;
      // The next round at its place on the schedule, whatever this one took.
      const wait = Math.max(0, began / 1000 + round * plan.intervalSeconds - Date.now() / 1000);
      if (await pause(wait, interrupt.signal)) break;
    }
    if (interrupt.signal.aborted) {
      reporter.warn('interrupted: no verdict, nothing recorded');
      return { view, exitCode: ExitCode.interrupted };
    }
  } finally {
    process.off('SIGINT', onSigint);
  }

  const result = verdictOf(
    view.rounds.map((r) => r.checks.map(({ name, verdict }) => ({ name, verdict }))),
    plan.failureLimit,
  );
  view.result = result;
  view.finishedAt = Math.max(startedAt, now());
  const recording = await record(view, result, context);
  return { view, recording, exitCode: verifyExitCode(result) };
}

/**
 * Records the verdict against the group; what this meets is said, never changes the exit code
 * (under --strict an undelivered record is said as an error). The JSON of the recording, if any, is returned
 * for verify's own JSON document.
 */
async function record(view: VerifyView, result: VerificationResult, context: CommandContext): Promise<unknown> {
  const { settings, reporter } = context;
  let shown: unknown;
  const quiet = { ...reporter, json: (value: unknown) => (shown = value) };
  const verification: VerificationRecord = {
    kind: 'verification',
    id: newRecordId(),
    result,
    startedAt: view.startedAt,
    finishedAt: view.finishedAt,
    timeFromClock: true,
  };
  try {
    const code = await sendRecord(
      { ...context, reporter: quiet },
      { job: settings.job, service: view.service, environment: view.environment },
      verification,
    );
    // verify's exit code is its verdict: under --strict a verdict not delivered is an error message, not another code.
    if (code !== ExitCode.ok)
      reporter.error('the verdict could not be delivered (it is kept); the exit code is still the verdict');
  } catch (error) {
    reporter.warn(`the verdict was not recorded: ${message(error)}`);
  }
  return shown;
}
