import snappy from 'snappyjs';
import { newRecordId } from '../../adapters/random-id.js';
import { retryWithinBudget } from '../../adapters/retry.js';
import type { Reporter } from '../../cli/output.js';
import type { Settings } from '../../cli/settings.js';
import { GatewayError, UsageError } from '../../core/errors.js';
import type { Grouping, GroupRecord } from '../../core/record.js';
import type { Backend, OpenBackend } from '../backend.js';
import { REMOTE_WRITE_HEADERS, RemoteWriteClient } from './client.js';
import { Journal, mergeEvents } from './journal.js';
import { historyQuery, historyTimeMs, type Ledger, ledgerFor, pastEvents } from './ledger.js';
import { encodeWriteRequest, type TimeSeries } from './protobuf.js';

/** A record as the outbox keeps it for remote-write: with its samples once they are computed, so a resend is identical. */
type KeptRemoteRecord = GroupRecord & { samples?: TimeSeries[] };

export function openRemoteWrite(
  settings: Settings,
  reporter: Reporter,
  url = settings.remoteWrite,
  seconds = settings.timeoutSeconds,
): RemoteWriteClient {
  if (!url) throw new UsageError('no --remote-write URL given');
  return new RemoteWriteClient({
    url,
    ...(settings.prometheus && { queryUrl: settings.prometheus }),
    timeoutMs: seconds * 1000,
    attemptTimeoutMs: Math.max(1000, (seconds * 1000) / 3),
    auth: settings.auth,
    tls: settings.tls,
    log: reporter.debug,
  });
}

/**
 * The samples of a record: the group's history is read at the record's own time through the
 * query API, so a backfilled record is placed among the deployments before it. Without a query
 * API (Thanos Receive and no --prometheus) the record is written without that history.
 */
async function computeLedger(
  client: RemoteWriteClient,
  journal: Journal,
  grouping: Grouping,
  record: GroupRecord,
  debug: (m: string) => void,
): Promise<Ledger> {
  if (record.kind !== 'deployment') return ledgerFor(grouping, record, []);
  const before = historyTimeMs(record);
  const recent = (await journal.events()).filter((e) => e.timestampMs <= before);
  if (!client.queryBase) {
    const ledger = ledgerFor(grouping, record, recent);
    ledger.notices.push(
      'no query API known (--prometheus): the previous deployments were not read, so lead time counts the deployed commit alone and no time to restore is observed',
    );
    return ledger;
  }
  const { value: raw } = await retryWithinBudget(
    () => client.remainingMs(),
    debug,
    () => client.rawSamples(historyQuery(grouping), before),
  );
  return ledgerFor(grouping, record, mergeEvents(pastEvents(raw), recent));
}

async function writeSamples(
  client: RemoteWriteClient,
  samples: TimeSeries[],
  debug: (m: string) => void,
): Promise<number> {
  const body = snappy.compress(Buffer.from(encodeWriteRequest(samples)));
  const { attempts } = await retryWithinBudget(
    () => client.remainingMs(),
    debug,
    () => client.write(body),
  );
  return attempts;
}

/** Samples as text, one per line, for --dry-run and --verbose. */
export function describeSamples(samples: readonly TimeSeries[]): string {
  return samples
    .flatMap((s) => {
      const name = s.labels.find((l) => l.name === '__name__')?.value ?? '';
      const labels = s.labels
        .filter((l) => l.name !== '__name__')
        .map((l) => `${l.name}=${JSON.stringify(l.value)}`)
        .join(', ');
      return s.samples.map((sample) => `${name}{${labels}} ${sample.value} ${sample.timestampMs}`);
    })
    .join('\n');
}

/**
 * Prometheus remote-write: each record is written as samples stamped at its own time (the
 * ledger, ledger.ts), so counts are exact under any concurrency, retries and backfill. The
 * group's history is read through the store's query API; this machine's journal bridges the
 * store's read lag. Once computed, a record's samples are kept with it, so a resend is identical.
 */
export const openBackend: OpenBackend = (settings, reporter, { target, configured, timeoutSeconds }) => {
  const client = configured
    ? openRemoteWrite(settings, reporter, settings.remoteWrite, timeoutSeconds)
    : openRemoteWrite({ ...settings, auth: {}, tls: {}, prometheus: undefined }, reporter, target.url, timeoutSeconds);
  const backend: Backend = {
    target,
    remainingMs: () => client.remainingMs(),
    async deliver(grouping, record, fix) {
      const journal = new Journal(settings.stateDir, grouping);
      const kept = record as KeptRemoteRecord;
      let samples = kept.samples;
      let ledger: Ledger | undefined;
      if (!samples) {
        ledger = await computeLedger(client, journal, grouping, record, reporter.debug);
        samples = ledger.series;
        await fix?.({ ...record, samples } as unknown as GroupRecord);
      }
      reporter.debug(`samples:\n${describeSamples(samples)}`);
      const attempts = await writeSamples(client, samples, reporter.debug);
      await journal.remember(record, samples).catch(() => undefined);
      return {
        duplicate: false,
        notices: ledger?.notices ?? [],
        attempts,
        ...(ledger?.durationSeconds !== undefined && { durationSeconds: ledger.durationSeconds }),
        ...(ledger?.leadTimes && { leadTimes: ledger.leadTimes }),
        ...(ledger?.timeToRestore !== undefined && { timeToRestore: ledger.timeToRestore }),
      };
    },
    async plan(grouping, record) {
      let ledger: Ledger;
      try {
        ledger = await computeLedger(
          client,
          new Journal(settings.stateDir, grouping),
          grouping,
          record,
          reporter.debug,
        );
      } catch (error) {
        if (!(error instanceof GatewayError)) throw error;
        reporter.warn(`${error.message}; showing the samples of a group with no earlier deployments`);
        ledger = ledgerFor(grouping, record, []);
      }
      const headers = Object.entries(REMOTE_WRITE_HEADERS)
        .map(([k, v]) => `${k}: ${v}`)
        .join('\n');
      const samples = describeSamples(ledger.series);
      return {
        url: client.displayUrl,
        text: `POST ${client.displayUrl}\n${headers}\n\n${samples}\n`,
        json: { url: client.displayUrl, samples: samples.split('\n') },
      };
    },
    async markInProgress(grouping, startedAt) {
      await writeSamples(
        client,
        ledgerFor(grouping, { kind: 'start', id: newRecordId(), startedAt }, []).series,
        reporter.debug,
      );
    },
    close: () => client.close(),
  };
  return backend;
};
