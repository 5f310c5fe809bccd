import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import pRetry from 'p-retry';
import snappy from 'snappyjs';
import type { CommandContext } from '../../context.js';
import { DeployctlError, ExitCode, GatewayError, UsageError } from '../../errors.js';
import type { Grouping } from '../../gateway/group-state.js';
import type { GroupRecord } from '../../metrics/apply.js';
import { formatDuration, type Reporter } from '../../output.js';
import { Outbox, type OutboxEntry } from '../../outbox.js';
import type { Settings } from '../../settings.js';
import { OutOfTime, REMOTE_WRITE_HEADERS, RemoteWriteClient } from './client.js';
import { Journal, mergeEvents } from './journal.js';
import { historyQuery, historyTimeMs, ledgerFor, pastEvents, type Ledger } from './ledger.js';
import { encodeWriteRequest, type TimeSeries } from './protobuf.js';

/** A record as the remote-write outbox keeps it: with its samples once they are computed, so a resend is identical. */
type KeptRemoteRecord = GroupRecord & { samples?: TimeSeries[] };

export function openRemoteWrite(settings: Settings, reporter: Reporter): RemoteWriteClient {
  if (!settings.remoteWrite) throw new UsageError('no --remote-write URL given');
  const seconds = settings.timeoutSeconds;
  return new RemoteWriteClient({
    url: settings.remoteWrite,
    ...(settings.prometheus && { queryUrl: settings.prometheus }),
    timeoutMs: seconds * 1000,
    attemptTimeoutMs: Math.max(1000, (seconds * 1000) / 3),
    auth: settings.auth,
    tls: settings.tls,
    log: reporter.debug,
  });
}

function remoteOutbox(settings: Settings): Outbox {
  return new Outbox(join(settings.stateDir, 'remote-write'));
}

/** Retries network errors, time-outs, 429 and retryable 5xx with backoff while the --timeout budget lasts. */
async function withRetries<T>(client: RemoteWriteClient, debug: (message: string) => void, work: () => Promise<T>): Promise<{ value: T; attempts: number }> {
  let attempts = 0;
  let lastCause: Error | undefined;
  const started = Date.now();
  try {
    const value = await pRetry(
      () => {
        attempts += 1;
        return work();
      },
      {
        retries: 20,
        minTimeout: 50,
        maxTimeout: 1000,
        factor: 2,
        randomize: true,
        maxRetryTime: Math.max(0, client.remainingMs()),
        shouldRetry: ({ error }) => error instanceof GatewayError && error.retryable && client.remainingMs() > 50,
        onFailedAttempt: ({ error, attemptNumber }) => {
          if (!(error instanceof OutOfTime)) lastCause = error;
          debug(`attempt ${attemptNumber} failed: ${error.message}`);
        },
      },
    );
    return { value, attempts };
  } catch (error) {
    const cause = error instanceof OutOfTime && lastCause ? lastCause : error;
    if (cause instanceof DeployctlError && attempts > 1) {
      cause.message = `${cause.message} (${attempts} attempts in ${((Date.now() - started) / 1000).toFixed(1)}s)`;
    }
    throw cause;
  }
}

/**
 * The samples of a record: the group's history is read at the record's own time through the
 * query API, so a backfilled record is placed among the deployments before it. Without a query
 * API (Thanos Receive and no --prometheus) the record is written without that history.
 */
async function computeLedger(client: RemoteWriteClient, journal: Journal, grouping: Grouping, record: GroupRecord, debug: (m: string) => void): Promise<Ledger> {
  if (record.kind !== 'deployment') return ledgerFor(grouping, record, []);
  const before = historyTimeMs(record);
  const recent = (await journal.events()).filter((e) => e.timestampMs <= before);
  if (!client.queryBase) {
    const ledger = ledgerFor(grouping, record, recent);
    ledger.notices.push('no query API known (--prometheus): the previous deployments were not read, so lead time counts the deployed commit alone and no time to restore is observed');
    return ledger;
  }
  const { value: raw } = await withRetries(client, debug, () => client.rawSamples(historyQuery(grouping), before));
  return ledgerFor(grouping, record, mergeEvents(pastEvents(raw), recent));
}

async function writeSamples(client: RemoteWriteClient, samples: TimeSeries[], debug: (m: string) => void): Promise<number> {
  const body = snappy.compress(Buffer.from(encodeWriteRequest(samples)));
  const { attempts } = await withRetries(client, debug, () => client.write(body));
  return attempts;
}

/** Samples as text, one per line, for --dry-run and --verbose. */
export function describeSamples(samples: readonly TimeSeries[]): string {
  return samples
    .flatMap((s) => {
      const name = s.labels.find((l) => l.name === '__name__')?.value ?? '';
      const labels = s.labels.filter((l) => l.name !== '__name__').map((l) => `${l.name}=${JSON.stringify(l.value)}`).join(', ');
      return s.samples.map((sample) => `${name}{${labels}} ${sample.value} ${sample.timestampMs}`);
    })
    .join('\n');
}

export function describeRecord(record: GroupRecord, grouping: Grouping): string {
  const target = `${grouping.service} in ${grouping.environment}`;
  if (record.kind === 'deployment') return `${record.status} of ${target}`;
  if (record.kind === 'start') return `start of a deployment of ${target}`;
  return `step ${JSON.stringify(record.step)} (${record.status}) of ${target}`;
}

function summaryLine(record: GroupRecord, grouping: Grouping, ledger: Ledger, store: string): string {
  if (record.kind === 'start') return `recorded ${describeRecord(record, grouping)} on ${store}: in progress`;
  const details = [
    record.kind === 'deployment' && record.version && `version ${record.version}`,
    ledger.durationSeconds !== undefined && `took ${formatDuration(ledger.durationSeconds)}`,
    ledger.leadTimes && `lead time ${ledger.leadTimes.map(formatDuration).join(', ')}`,
    ledger.timeToRestore !== undefined && `restored after ${formatDuration(ledger.timeToRestore)}`,
  ].filter(Boolean);
  return `recorded ${describeRecord(record, grouping)} on ${store}${details.length ? ` (${details.join(', ')})` : ''}`;
}

export interface RemoteFlushResult {
  sent: number;
  remaining: number;
  corrupt: number;
}

/**
 * Sends what the remote-write outbox keeps. Samples are stamped with their own times, so the
 * order does not matter and one refused record holds no other back. A kept record whose samples
 * were computed is sent again byte for byte (a store may have taken part of it).
 */
export async function flushRemoteWrite({ settings, reporter }: CommandContext, client: RemoteWriteClient, { announce }: { announce: boolean }): Promise<RemoteFlushResult> {
  const outbox = remoteOutbox(settings);
  const { entries, corrupt } = await outbox.list();
  for (const entry of corrupt) reporter.warn(`kept record ${entry.file} is unreadable (${entry.problem}); moved to ${entry.movedTo} — nothing was sent for it`);
  const result: RemoteFlushResult = { sent: 0, remaining: 0, corrupt: corrupt.length };
  let unreachable = false;
  for (const entry of entries) {
    const { grouping } = entry.kept;
    const record = entry.kept.record as KeptRemoteRecord;
    if (unreachable) {
      result.remaining += 1;
      continue;
    }
    try {
      if (!(await outbox.holds(entry))) continue;
      const journal = new Journal(settings.stateDir, grouping);
      const samples = record.samples ?? (await computeLedger(client, journal, grouping, record, reporter.debug)).series;
      await writeSamples(client, samples, reporter.debug);
      await journal.remember(record, samples);
      await outbox.remove(entry);
      result.sent += 1;
      if (announce) reporter.info(`sent kept ${describeRecord(record, grouping)} to ${client.displayUrl}`);
    } catch (error) {
      if (!(error instanceof DeployctlError)) throw error;
      result.remaining += 1;
      unreachable = error instanceof GatewayError && error.retryable && error.status === undefined;
      reporter.warn(`kept ${describeRecord(record, grouping)} could not be sent: ${error.message}`);
      if (error.hint) reporter.warn(error.hint);
    }
  }
  return result;
}

/**
 * Records one record in a remote-write store. The record is on disk before the first request
 * leaves; it is removed once the store has taken its samples. A failure keeps it, with a
 * warning, and exits 0 (1 under --strict): the recorder never changes the outcome of a deploy.
 */
export async function sendToRemoteWrite(context: CommandContext, grouping: Grouping, record: GroupRecord, { toStderr = false }: { toStderr?: boolean } = {}): Promise<number> {
  const { settings, reporter, now } = context;
  const client = openRemoteWrite(settings, reporter);
  const say = toStderr ? (message: string) => !settings.quiet && process.stderr.write(`deployctl: ${message}\n`) : reporter.info;
  const outbox = remoteOutbox(settings);
  let kept: OutboxEntry | undefined;
  const journal = new Journal(settings.stateDir, grouping);
  try {
    if (settings.dryRun) {
      let ledger: Ledger;
      try {
        ledger = await computeLedger(client, journal, grouping, record, reporter.debug);
      } catch (error) {
        if (!(error instanceof GatewayError)) throw error;
        reporter.warn(`${error.message}; showing the samples of a group with no earlier deployments`);
        ledger = ledgerFor(grouping, record, []);
      }
      const headers = Object.entries(REMOTE_WRITE_HEADERS).map(([k, v]) => `${k}: ${v}`).join('\n');
      const text = `POST ${client.displayUrl}\n${headers}\n\n${describeSamples(ledger.series)}\n`;
      if (settings.json) reporter.json({ dryRun: true, url: client.displayUrl, samples: describeSamples(ledger.series).split('\n') });
      else if (toStderr) process.stderr.write(text);
      else reporter.raw(text);
      return ExitCode.ok;
    }

    // On disk before the first request leaves; kept again with its samples once they are known.
    const keptAt = now();
    kept = { file: await outbox.keep(grouping, record, 'not sent yet', keptAt), kept: { format: 1, keptAt, grouping, record, reason: '' } };
    const ledger = await computeLedger(client, journal, grouping, record, reporter.debug);
    const withSamples: KeptRemoteRecord = { ...record, samples: ledger.series };
    await outbox.keep(grouping, withSamples, 'not sent yet', keptAt);
    reporter.debug(`samples:\n${describeSamples(ledger.series)}`);
    const attempts = await writeSamples(client, ledger.series, reporter.debug);
    await outbox.remove(kept);
    await journal.remember(record, ledger.series);

    for (const notice of ledger.notices) if (!settings.quiet) process.stderr.write(`deployctl: note: ${notice}\n`);
    if (settings.json) {
      const { history: _history, ...shown } = record as GroupRecord & { history?: unknown };
      const output = {
        recorded: true,
        backend: 'remote-write',
        url: client.displayUrl,
        ...grouping,
        ...shown,
        samples: ledger.series.length,
        attempts,
        notices: ledger.notices,
        ...(ledger.durationSeconds !== undefined && { durationSeconds: ledger.durationSeconds }),
        ...(ledger.leadTimes && { leadTimes: ledger.leadTimes }),
        ...(ledger.timeToRestore !== undefined && { timeToRestore: ledger.timeToRestore }),
      };
      if (toStderr) process.stderr.write(`${JSON.stringify(output)}\n`);
      else reporter.json(output);
    } else {
      say(summaryLine(record, grouping, ledger, client.displayUrl));
    }

    const flushed = await flushRemoteWrite(context, client, { announce: false });
    if (flushed.sent > 0) reporter.debug(`sent ${flushed.sent} kept record(s) too`);
    return ExitCode.ok;
  } catch (error) {
    if (error instanceof UsageError || !(error instanceof DeployctlError)) throw error;
    if (settings.dryRun) {
      reporter.warn(error.message);
      return settings.strict ? ExitCode.failure : ExitCode.ok;
    }
    reporter.warn(
      kept
        ? `${describeRecord(record, grouping)} is not in the store yet: ${error.message}. It is kept in ${outbox.dir} and sent by the next deployctl command, or now with: deployctl flush`
        : `${describeRecord(record, grouping)} was not recorded: ${error.message}; and it could not be kept`,
    );
    if (error.hint) reporter.warn(error.hint);
    return settings.strict ? ExitCode.failure : ExitCode.ok;
  } finally {
    client.close();
  }
}

/** Marks a deployment wrapped by `run` in progress: best effort, at most 2 seconds, never kept for later. */
export async function markStarted({ settings, reporter }: CommandContext, grouping: Grouping, startedAt: number): Promise<void> {
  const client = openRemoteWrite({ ...settings, timeoutSeconds: Math.min(2, settings.timeoutSeconds) }, reporter);
  try {
    await writeSamples(client, ledgerFor(grouping, { kind: 'start', id: randomUUID(), startedAt }, []).series, reporter.debug);
  } catch (error) {
    reporter.debug(`could not mark the deployment in progress: ${(error as Error).message}`);
  } finally {
    client.close();
  }
}
