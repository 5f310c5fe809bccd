import snappy from 'snappyjs';
import { newRecordId } from '../../adapters/random-id.js';
import { retryWithinBudget } from '../../adapters/retry.js';
import { GatewayError } from '../../core/errors.js';
import type { Grouping, GroupRecord } from '../../core/record.js';
import type { Backend, BackendModule } from '../backend.js';
import { openRemoteWrite, REMOTE_WRITE_HEADERS, type RemoteWriteClient } from './client.js';
import { historyQuery, historyTimeMs, type Ledger, ledgerFor, pastEvents } from './ledger.js';
import { describeSamples, encodeWriteRequest, type TimeSeries } from './protobuf.js';
import { mergeEvents, RecentRecords } from './recent-records.js';

/** A record as the outbox keeps it for remote-write: with its samples once they are computed, so a resend is identical. */
type KeptRemoteRecord = GroupRecord & { samples?: TimeSeries[] };

/**
 * The samples of a record: the group's history is read at the record's own time through the
 * query API, so a backfilled record is placed among the deployments before it. Without a query
 * API (Thanos Receive and no --prometheus) the record is written without that history.
 */
async function computeLedger(
  client: RemoteWriteClient,
  recentRecords: RecentRecords,
  grouping: Grouping,
  record: GroupRecord,
  debug: (m: string) => void,
): Promise<Ledger> {
  if (record.kind !== 'deployment') return ledgerFor(grouping, record, []);
  const before = historyTimeMs(record);
  const recent = (await recentRecords.events()).filter((e) => e.timestampMs <= before);
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

/**
 * Prometheus remote-write: each record is written as samples stamped at its own time (the
 * ledger, ledger.ts), so counts are exact under any concurrency, retries and backfill. The
 * group's history is read through the store's query API; this machine's recent records bridge the
 * store's read lag. Once computed, a record's samples are kept with it, so a resend is identical.
 */
const openBackend: BackendModule['openBackend'] = (destination, log, { target, configured, timeoutSeconds }) => {
  const client = openRemoteWrite(
    configured ? destination : { ...destination, url: target.url, auth: {}, tls: {}, prometheus: undefined },
    log,
    timeoutSeconds,
  );
  const backend: Backend = {
    target,
    remainingMs: () => client.remainingMs(),
    async deliver(grouping, record, fix) {
      const recentRecords = new RecentRecords(destination.stateDir, grouping);
      const kept = record as KeptRemoteRecord;
      let samples = kept.samples;
      let ledger: Ledger | undefined;
      if (!samples) {
        ledger = await computeLedger(client, recentRecords, grouping, record, log.debug);
        samples = ledger.series;
        await fix?.({ ...record, samples } as unknown as GroupRecord);
      }
      log.debug(`samples:\n${describeSamples(samples)}`);
      const attempts = await writeSamples(client, samples, log.debug);
      await recentRecords.remember(record, samples).catch(() => undefined);
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
          new RecentRecords(destination.stateDir, grouping),
          grouping,
          record,
          log.debug,
        );
      } catch (error) {
        if (!(error instanceof GatewayError)) throw error;
        log.warn(`${error.message}; showing the samples of a group with no earlier deployments`);
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
        log.debug,
      );
    },
    close: () => client.close(),
  };
  return backend;
};

export const remoteWrite: BackendModule = {
  openBackend,
  openReader: async (destination, log) => (await import('./reader.js')).openReader(destination, log),
};
