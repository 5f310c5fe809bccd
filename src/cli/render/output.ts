import chalk, { chalkStderr } from 'chalk';
import { DeployctlError } from '../../core/errors.js';
import { describeSkipped, type SkippedAlerts } from '../../core/incident.js';
import type { Log } from '../../core/log.js';
import { printable } from '../../core/printable.js';
import type { Grouping, GroupRecord, Target } from '../../core/record.js';
import type { FlushOutcome } from '../../recorder/flush.js';
import type { RecordOutcome } from '../../recorder/record-one.js';
import type { Settings } from '../settings.js';

/**
 * Where commands send what they have to say; the one way anything of deployctl reaches stdout or
 * stderr. Tests collect it as data instead of printing (consoleReporter with other streams).
 */
export interface Reporter extends Log {
  /** The command's result for a person (stdout); nothing under --quiet or --json. */
  info(message: string): void;
  /** Machine-readable result under --json (stdout). */
  json(value: unknown): void;
  /** Raw text that is the command's output (stdout), e.g. --dry-run's exposition. */
  raw(text: string): void;
  /** A line for a person on stderr (a wrapped command owns stdout); nothing under --quiet. */
  aside(message: string): void;
  /** A fact worth a line, not a problem (stderr); nothing under --quiet. */
  note(message: string): void;
  /** Why the command stopped, and how to fix it (stderr), whatever --quiet says. */
  error(message: string, hint?: string): void;
  /** A stack trace for an unexpected error (stderr), under --verbose or DEBUG. */
  stack(text: string): void;
}

/** Where a reporter writes: the process's own streams, or a test's collector. */
export interface Streams {
  stdout(text: string): void;
  stderr(text: string): void;
}

const processStreams: Streams = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/**
 * NO_COLOR (any non-empty value) turns colors off, on a terminal too; FORCE_COLOR wins over it
 * and is read by chalk itself. https://no-color.org
 */
export function colorsOff(env: Record<string, string | undefined>): boolean {
  return Boolean(env.NO_COLOR) && env.FORCE_COLOR === undefined;
}

/**
 * Whether the terminal's locale can show characters beyond ASCII: not when LC_ALL, LC_CTYPE or
 * LANG (the first that is set) names a locale that is not UTF-8, such as C or POSIX.
 */
export function unicodeLocale(env: Record<string, string | undefined>): boolean {
  const locale = env.LC_ALL || env.LC_CTYPE || env.LANG;
  return !locale || /utf-?8/i.test(locale);
}

const ASCII_MARKS: Record<string, string> = { '✔': 'OK', '✖': 'FAIL', '…': '...', '→': '->' };

/** The marks deployctl prints, in ASCII where the locale cannot show them; other text is left as it is. */
export function asciiMarks(text: string): string {
  return text.replace(/[✔✖…→]/g, (mark) => ASCII_MARKS[mark] ?? mark);
}

/**
 * The reporter of one command. `besideCommand`: a wrapped command owns stdout (run, step), so the
 * result goes to stderr as a `deployctl:` line, or as one line of JSON.
 */
export function consoleReporter(
  settings: Pick<Settings, 'json' | 'quiet' | 'verbose'>,
  env: Record<string, string | undefined> = process.env,
  { streams = processStreams, besideCommand = false }: { streams?: Streams; besideCommand?: boolean } = {},
): Reporter {
  if (colorsOff(env)) {
    chalk.level = 0;
    chalkStderr.level = 0;
  }
  const err = chalkStderr;
  // What deployctl says beside a command may quote a server: no control character reaches the terminal raw.
  const shown = (message: string) => printable(message, { lineFeeds: true });
  // Messages in ASCII where the locale is not UTF-8; JSON and the raw requests of --dry-run are data, as they are.
  const data = streams;
  if (!unicodeLocale(env))
    streams = { stdout: (text) => data.stdout(asciiMarks(text)), stderr: (text) => data.stderr(asciiMarks(text)) };
  const aside = (message: string) => {
    if (!settings.quiet) streams.stderr(`deployctl: ${shown(message)}\n`);
  };
  return {
    info: besideCommand
      ? aside
      : (message) => {
          if (!settings.quiet && !settings.json) streams.stdout(`${message}\n`);
        },
    warn: (message) => streams.stderr(`${err.yellow('deployctl: warning:')} ${shown(message)}\n`),
    debug: (message) => {
      if (settings.verbose) streams.stderr(`${err.dim(`deployctl: ${shown(message)}`)}\n`);
    },
    json: besideCommand
      ? (value) => data.stderr(`${JSON.stringify(value)}\n`)
      : (value) => data.stdout(`${JSON.stringify(value, null, 2)}\n`),
    raw: besideCommand ? data.stderr : data.stdout,
    aside,
    note: (message) => aside(`note: ${message}`),
    error: (message, hint) => streams.stderr(`deployctl: ${shown(message)}\n${hint ? `  ${shown(hint)}\n` : ''}`),
    stack: (text) => streams.stderr(`${text}\n`),
  };
}

/**
 * A record that was not made, and why (a warning: the deploy goes on); under --json also the one
 * JSON document of the command.
 */
export function renderNotRecorded(
  error: unknown,
  { json, stack }: { json: boolean; stack: boolean },
  reporter: Reporter,
  notDone = 'not recorded',
) {
  const err = error as Error & { hint?: string };
  const message = `${error instanceof DeployctlError ? '' : 'unexpected error: '}${err.message}`;
  reporter.warn(`${notDone}: ${message}`);
  if (err.hint) reporter.warn(err.hint);
  if (!(error instanceof DeployctlError) && stack) reporter.stack(err.stack ?? '');
  if (json) reporter.raw(`${JSON.stringify({ recorded: false, error: message })}\n`);
}

/** The error a command ended with, and its exit code; under --json also as the one JSON document. */
export function renderError(
  error: unknown,
  exitCode: number,
  { json, stack }: { json: boolean; stack: boolean },
  reporter: Reporter,
): void {
  const message = error instanceof DeployctlError ? error.message : `unexpected error: ${(error as Error).message}`;
  reporter.error(message, error instanceof DeployctlError ? error.hint : undefined);
  if (!(error instanceof DeployctlError) && stack) reporter.stack((error as Error).stack ?? '');
  if (json) reporter.raw(`${JSON.stringify({ error: message, exitCode })}\n`);
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

export function describeRecord(record: GroupRecord, grouping: Grouping): string {
  const target = `${grouping.service} in ${grouping.environment}`;
  if (record.kind === 'deployment') return `${record.status} of ${target}`;
  if (record.kind === 'start') return `start of a deployment of ${target}`;
  if (record.kind === 'verification') return `verification (${record.result}) of ${target}`;
  if (record.kind === 'incident')
    return `incident ${JSON.stringify(record.incident)} ${record.action === 'open' ? 'opened' : 'resolved'} for ${target}`;
  return `step ${JSON.stringify(record.step)} (${record.status}) of ${target}`;
}

function summaryLine(outcome: RecordOutcome): string {
  const { record, grouping, delivery } = outcome;
  const what = describeRecord(record, grouping);
  if (outcome.sentByAnother) return `recorded ${what} (sent by another deployctl on this machine)`;
  if (!delivery) return `recorded ${what}`;
  if (delivery.duplicate) return `${what} was already recorded; not counted again`;
  if (record.kind === 'start') return `recorded ${what}: in progress`;
  const details = [
    record.kind === 'deployment' && record.version && `version ${record.version}`,
    delivery.durationSeconds !== undefined && `took ${formatDuration(delivery.durationSeconds)}`,
    delivery.leadTimes && formatLeadTimes(delivery.leadTimes),
    delivery.timeToRestore !== undefined && `restored after ${formatDuration(delivery.timeToRestore)}`,
    // A failed deploy is a failed change of course, and its restore time is shown above: only the news.
    ...(delivery.failedChanges ?? [])
      .filter((c) => c.reason !== 'failure' || record.kind !== 'deployment' || c.at !== record.finishedAt)
      .map((c) => `failed change (${c.reason}) of the deployment finished ${new Date(c.at * 1000).toISOString()}`),
    ...(delivery.recoverySeconds ?? [])
      .filter((s) => s !== delivery.timeToRestore)
      .map((s) => `a failed change recovered after ${formatDuration(s)}`),
    delivery.rework && 'rework',
  ].filter(Boolean);
  const totals = Object.entries(delivery.totals ?? {})
    .map(([status, n]) => `${status} ${n}`)
    .join(', ');
  return `recorded ${what}${details.length ? ` (${details.join(', ')})` : ''}${totals ? `; deployments now: ${totals}` : ''}`;
}

/** One record's outcome, as text or as one JSON document. */
export function renderRecordOutcome(
  outcome: RecordOutcome,
  settings: Pick<Settings, 'json' | 'quiet'>,
  reporter: Reporter,
): void {
  const { record, grouping, failure, backlog } = outcome;
  const what = describeRecord(record, grouping);
  const say = reporter.info;
  const json = reporter.json;

  const seen = new Set<string>();
  for (const q of backlog.quarantined) {
    if (seen.has(q.file)) continue;
    seen.add(q.file);
    reporter.warn(
      `${q.file} is not a record deployctl can send (${q.problem}); ${q.movedTo ? `moved to ${q.movedTo}` : 'left where it is'}, nothing was sent for it`,
    );
  }

  if (outcome.dryRun) {
    if (settings.json) json({ dryRun: true, ...(failure && { error: failure.message }), ...outcome.dryRun.json });
    else reporter.raw(outcome.dryRun.text);
    return;
  }
  if (outcome.notKept) {
    reporter.warn(
      `${what} could not be kept on disk before sending (${outcome.notKept}); ${outcome.delivered ? 'it was sent' : 'it is lost if it cannot be sent now'}`,
    );
  }
  for (const notice of outcome.delivery?.notices ?? []) reporter.note(notice);

  if (outcome.delivered) {
    if (settings.json) {
      const {
        history: _history,
        timeFromClock: _fromClock,
        ...shownRecord
      } = record as GroupRecord & { history?: unknown };
      json({
        recorded: !outcome.delivery?.duplicate,
        ...grouping,
        ...shownRecord,
        target: outcome.target.url,
        ...outcome.delivery,
        ...(outcome.sentByAnother && { sentByAnother: true }),
        stillKept: backlog.remaining,
      });
    } else {
      say(summaryLine(outcome));
    }
  } else {
    const reason = failure?.message ?? 'unknown';
    if (outcome.keptIn && failure?.permanent) {
      reporter.warn(
        `${what} is not on the gateway: ${reason}. Sending it again to this URL cannot help: it is kept apart, waiting for a decision (deployctl outbox list; deployctl outbox move --from URL --to URL, then deployctl flush)`,
      );
    } else if (outcome.keptIn) {
      reporter.warn(
        `${what} is not on the gateway yet: ${reason}. It is kept in ${outcome.keptIn} and sent by the next deployctl command, or now with: deployctl flush`,
      );
    } else {
      reporter.warn(`not recorded: ${what}: ${reason}; and it could not be kept`);
    }
    if (failure?.hint) reporter.warn(failure.hint);
    if (settings.json) {
      json({
        recorded: false,
        ...grouping,
        kind: record.kind,
        id: record.id,
        target: outcome.target.url,
        error: reason,
        keptIn: outcome.keptIn ?? null,
        stillKept: backlog.remaining,
      });
    }
  }
  if (backlog.sent > 0 && !settings.json) reporter.aside(`also sent ${backlog.sent} record(s) kept earlier`);
  const others = backlog.remaining - (outcome.delivered ? 0 : 1);
  if (others > 0) reporter.warn(`${others} record(s) for this gateway are still kept; deployctl flush sends them`);
  if (backlog.otherTargets > 0)
    reporter.warn(
      `${backlog.otherTargets} kept record(s) are meant for other gateways; deployctl flush sends each to its own`,
    );
}

const isoTime = (seconds: number) => new Date(seconds * 1000).toISOString();

/**
 * `deployctl incident`: one line per incident record (its outcome as renderRecordOutcome says it),
 * the skipped alerts in one notice line; under --json one document, `{incidents: [...], skipped}`.
 */
export function renderIncidentOutcomes(
  outcomes: readonly RecordOutcome[],
  skipped: SkippedAlerts | undefined,
  settings: Pick<Settings, 'json' | 'quiet' | 'dryRun'>,
  reporter: Reporter,
): void {
  const skippedLine = skipped && describeSkipped(skipped);
  if (skippedLine) reporter.note(skippedLine);
  const documents: unknown[] = [];
  for (const outcome of outcomes) {
    const { record, grouping } = outcome;
    if (record.kind !== 'incident') continue;
    let rendered: Record<string, unknown> = {};
    const collecting: Reporter = { ...reporter, json: (value) => (rendered = value as Record<string, unknown>) };
    if (outcome.dryRun && !settings.json)
      reporter.info(`would record ${describeRecord(record, grouping)} at ${isoTime(record.at)}:`);
    renderRecordOutcome(outcome, settings, collecting);
    const { timeFromClock: _fromClock, ...shown } = record;
    documents.push({ ...grouping, ...shown, ...rendered });
  }
  if (outcomes.length === 0 && !settings.json) reporter.info('no incident to record');
  if (settings.json) {
    reporter.json({
      ...(settings.dryRun && { dryRun: true }),
      incidents: documents,
      ...(skipped && { alerts: skipped.total, skipped: skipped.skipped, skippedReasons: skipped.reasons }),
    });
  }
}

/** `deployctl flush`: per target, what was sent and what is still kept. */
export function renderFlushOutcome(
  outcome: FlushOutcome,
  settings: Pick<Settings, 'json' | 'quiet'>,
  reporter: Reporter,
): void {
  for (const q of outcome.quarantined) {
    reporter.warn(
      `${q.file} is not a record deployctl can send (${q.problem}); ${outcome.dryRun ? 'it would be quarantined' : q.movedTo ? `moved to ${q.movedTo}` : 'left where it is'}, nothing is sent for it`,
    );
  }
  if (settings.json) {
    reporter.json({
      dryRun: outcome.dryRun,
      targets: outcome.targets.map((t) => ({
        url: t.target.url,
        backend: t.target.backend,
        configured: t.configured,
        sent: t.sent,
        remaining: t.remaining,
        ...(outcome.dryRun && {
          wouldSend: t.pending.map((p) => ({
            service: p.grouping.service,
            environment: p.grouping.environment,
            kind: p.record.kind,
            id: p.record.id,
          })),
        }),
        errors: t.failures.map((f) => ({
          service: f.grouping.service,
          environment: f.grouping.environment,
          id: f.record.id,
          error: f.failure.message,
        })),
        held: t.held.map((f) => ({
          service: f.grouping.service,
          environment: f.grouping.environment,
          id: f.record.id,
          reason: f.failure.message,
        })),
      })),
      quarantined: outcome.quarantined.map((q) => ({ file: q.file, problem: q.problem, movedTo: q.movedTo ?? null })),
      waitingForDecision: outcome.held,
      unread: outcome.unread,
    });
    return;
  }
  const heldNotice = () => {
    if (outcome.held === 0) return;
    reporter.warn(
      `${outcome.held} record(s) were refused for good by their target and wait for a decision, not retried: see deployctl outbox list (then deployctl outbox move --from URL --to URL, or deployctl outbox drop)`,
    );
  };
  if (outcome.targets.length === 0) {
    reporter.info(outcome.held > 0 ? 'nothing left to send' : 'nothing kept: the outbox is empty');
    heldNotice();
    return;
  }
  for (const t of outcome.targets) {
    if (outcome.dryRun) {
      reporter.info(
        `would send ${t.remaining} kept record(s) to ${t.target.url}${t.configured ? '' : ' (not the configured gateway: without its credentials)'}:`,
      );
      for (const p of t.pending) reporter.info(`  ${describeRecord(p.record, p.grouping)}`);
      continue;
    }
    const shown = [...new Set([...t.failures, ...t.held].map((f) => f.failure.message))].slice(0, 3);
    for (const message of shown) reporter.warn(`${t.target.url}: ${message}`);
    reporter.info(
      `${t.target.url}: sent ${t.sent} kept record(s); ${t.remaining} still kept${t.held.length ? `; ${t.held.length} refused for good, put apart` : ''}`,
    );
  }
  if (outcome.unread > 0) {
    reporter.warn(
      `${outcome.unread} kept record(s) not read before the --timeout ran out: still kept, for the next flush`,
    );
  }
  heldNotice();
}

/**
 * On a terminal, a wait of more than a second says what it waits for, once per thing waited for.
 * Elsewhere (CI logs, pipes) it stays quiet.
 */
export function waitNotice(
  settings: Pick<Settings, 'json' | 'quiet'>,
  to?: NodeJS.WriteStream,
): { waitingFor(what: string): void; done(): void } {
  // Quiet first: process.stderr is made only when it may be written to.
  if (settings.quiet || settings.json) return { waitingFor: () => undefined, done: () => undefined };
  const stream = to ?? process.stderr;
  if (!stream.isTTY) return { waitingFor: () => undefined, done: () => undefined };
  let timer: NodeJS.Timeout | undefined;
  return {
    waitingFor(what) {
      clearTimeout(timer);
      timer = setTimeout(
        () =>
          stream.write(
            `${chalkStderr.dim(`deployctl: waiting for ${what}${unicodeLocale(process.env) ? '…' : '...'}`)}\n`,
          ),
        1000,
      );
      timer.unref();
    },
    done: () => clearTimeout(timer),
  };
}

/** One kept record as `outbox list` shows it. */
interface OutboxItem {
  target: Target;
  service: string;
  environment: string;
  kind: string;
  id: string;
  /** Unix seconds. */
  keptAt: number;
  /** Why its target refused it for good, when it waits for a decision; otherwise flush retries it. */
  heldFor?: string;
}

export type OutboxView =
  | { action: 'list'; items: OutboxItem[] }
  | { action: 'drop'; dropped: number; declined?: 'no' | 'interrupted'; what: string }
  | { action: 'move'; moved: number; from: string; to: string };

/** `deployctl outbox`: what is kept and why, or what was dropped or moved; its exit code. */
export function renderOutboxView(
  view: OutboxView,
  settings: Pick<Settings, 'json' | 'quiet' | 'dryRun'>,
  reporter: Reporter,
): number {
  const would = settings.dryRun ? 'would be ' : '';
  if (view.action === 'list') {
    if (settings.json) {
      reporter.json({
        records: view.items.map((item) => ({
          url: item.target.url,
          backend: item.target.backend,
          service: item.service,
          environment: item.environment,
          kind: item.kind,
          id: item.id,
          keptAt: new Date(item.keptAt * 1000).toISOString(),
          waitsForDecision: item.heldFor !== undefined,
          reason: item.heldFor ?? null,
        })),
      });
      return 0;
    }
    if (view.items.length === 0) {
      reporter.info('nothing kept: the outbox is empty');
      return 0;
    }
    const byUrl = new Map<string, typeof view.items>();
    for (const item of view.items) byUrl.set(item.target.url, [...(byUrl.get(item.target.url) ?? []), item]);
    for (const [url, items] of byUrl) {
      const held = items.filter((i) => i.heldFor !== undefined);
      reporter.info(
        `${url} (${items[0]!.target.backend}): ${items.length - held.length} kept for deployctl flush, ${held.length} refused for good, waiting for a decision`,
      );
      for (const item of items) {
        const when = new Date(item.keptAt * 1000).toISOString();
        reporter.info(
          `  ${item.kind} of ${item.service} in ${item.environment} (${item.id}, kept ${when})${item.heldFor ? `: refused for good: ${item.heldFor}` : ': not delivered yet, flush retries it'}`,
        );
      }
      if (held.length > 0) {
        reporter.info(
          `  fix: deployctl outbox move --from ${url} --to <the right URL> (the same URL once the server takes them), then deployctl flush; or deployctl outbox drop --target ${url}`,
        );
      }
    }
    return 0;
  }
  if (view.action === 'drop') {
    if (settings.json)
      reporter.json({ dropped: view.dropped, declined: view.declined ?? null, dryRun: settings.dryRun });
    else if (view.declined) reporter.info(`kept ${view.what}: nothing dropped`);
    else reporter.info(view.dropped === 0 ? 'nothing to drop' : `${would}dropped ${view.what}`);
    return 0;
  }
  if (settings.json) reporter.json({ moved: view.moved, from: view.from, to: view.to, dryRun: settings.dryRun });
  else if (view.moved === 0) reporter.info(`nothing kept for ${view.from}: see deployctl outbox list`);
  else
    reporter.info(
      `${would}moved ${view.moved} kept record(s) from ${view.from} to ${view.to}: deployctl flush sends them`,
    );
  return 0;
}
