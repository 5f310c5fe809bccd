import snappy from 'snappyjs';
import { redactUrl } from '../../adapters/http-endpoint.js';
import { newRecordId } from '../../adapters/random-id.js';
import { retryWithinBudget } from '../../adapters/retry.js';
import { GatewayError } from '../../core/errors.js';
import type { Grouping, GroupRecord } from '../../core/record.js';
import type { Backend, BackendModule } from '../backend.js';
import { type ClockCheck, clockChecks } from '../clock-check.js';
import { openRemoteWrite, REMOTE_WRITE_HEADERS, type RemoteWriteClient } from './client.js';
import { historyQuery, historyTimeMs, type Ledger, ledgerFor, pastEvents } from './ledger.js';
import { describeSamples, encodeWriteRequest, type TimeSeries } from './protobuf.js';
import { mergeEvents, RecentRecords } from './recent-records.js';

/** A record as the outbox keeps it for remote-write: with its samples once they are computed, so a resend is identical. */
type KeptRemoteRecord = GroupRecord & { samples?: TimeSeries[] };

/**
 * The samples of a record, with its times checked against the store's clock first (core/clock.ts):
 * the group's history is read at the record's own time through the query API, so a backfilled
 * record is placed among the deployments before it, and the Date of that answer is the store's
 * clock. When the record's time is corrected, the history is read again at the corrected time
 * (only then). A start or step, or a deployment to a store without a query API (Thanos Receive and
 * no --prometheus), is written without a history: a small request asks the store for its clock
 * first, unless this client has had an answer already.
 */
async function computeLedger(
  client: RemoteWriteClient,
  recentRecords: RecentRecords,
  grouping: Grouping,
  given: GroupRecord,
  check: ClockCheck,
  debug: (m: string) => void,
): Promise<{ ledger: Ledger; record: GroupRecord }> {
  const readHistory = async (record: GroupRecord) =>
    (
      await retryWithinBudget(
        () => client.remainingMs(),
        debug,
        () => client.rawSamples(historyQuery(grouping), historyTimeMs(record)),
      )
    ).value;
  const needsHistory = (r: GroupRecord) =>
    r.kind === 'deployment' || r.kind === 'verification' || r.kind === 'incident';
  const withHistory = needsHistory(given) && client.queryBase !== undefined;
  let raw = withHistory ? await readHistory(given) : undefined;
  if (!withHistory && !client.clock)
    await retryWithinBudget(
      () => client.remainingMs(),
      debug,
      () => client.probeClock(),
    );
  const record = await check.settle(given);
  if (!needsHistory(record)) return { ledger: ledgerFor(grouping, record, []), record };
  if (raw && record !== given) raw = await readHistory(record);
  const before = historyTimeMs(record);
  const recent = (await recentRecords.events()).filter((e) => e.timestampMs <= before);
  if (!raw) {
    const ledger = ledgerFor(grouping, record, recent);
    // Without the store's history, counts would be this machine's alone: none are given.
    delete ledger.totals;
    ledger.notices.push(
      'no query API known (--prometheus): the previous deployments were not read, so lead time counts the deployed commit alone and no time to restore or failed change of an earlier deployment is observed',
    );
    return { ledger, record };
  }
  return { ledger: ledgerFor(grouping, record, mergeEvents(pastEvents(raw), recent)), record };
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
  const clockCheck = clockChecks(() => client.clock, `the store at ${redactUrl(client.writeUrl)}`, log);
  const backend: Backend = {
    target,
    remainingMs: () => client.remainingMs(),
    async deliver(grouping, given, fix) {
      const recentRecords = new RecentRecords(destination.stateDir, grouping);
      const kept = given as KeptRemoteRecord;
      let record = given;
      let samples = kept.samples;
      let ledger: Ledger | undefined;
      const check = clockCheck();
      if (!samples) {
        // The times are settled before the samples are computed; both are kept together.
        ({ ledger, record } = await computeLedger(client, recentRecords, grouping, given, check, log.debug));
        samples = ledger.series;
        await fix?.({ ...record, samples } as unknown as GroupRecord);
      }
      log.debug(`samples:\n${describeSamples(samples)}`);
      // An incident that changes nothing (open already, not open) writes nothing.
      const attempts = samples.length > 0 ? await writeSamples(client, samples, log.debug) : 0;
      await recentRecords.remember(record, samples).catch(() => undefined);
      return {
        duplicate: false,
        notices: [...check.notices, ...(ledger?.notices ?? [])],
        attempts,
        ...(check.corrected && { record: check.corrected }),
        ...(ledger?.durationSeconds !== undefined && { durationSeconds: ledger.durationSeconds }),
        ...(ledger?.leadTimes && { leadTimes: ledger.leadTimes }),
        ...(ledger?.timeToRestore !== undefined && { timeToRestore: ledger.timeToRestore }),
        ...(ledger?.failedChanges && { failedChanges: ledger.failedChanges }),
        ...(ledger?.recoverySeconds && { recoverySeconds: ledger.recoverySeconds }),
        ...(ledger?.rework && { rework: true }),
        ...(ledger?.totals && { totals: ledger.totals }),
      };
    },
    async plan(grouping, record) {
      let ledger: Ledger;
      try {
        ({ ledger } = await computeLedger(
          client,
          new RecentRecords(destination.stateDir, grouping),
          grouping,
          record,
          clockCheck(),
          log.debug,
        ));
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
      const start: GroupRecord = { kind: 'start', id: newRecordId(), startedAt, timeFromClock: true };
      const { ledger } = await computeLedger(
        client,
        new RecentRecords(destination.stateDir, grouping),
        grouping,
        start,
        clockCheck(),
        log.debug,
      );
      await writeSamples(client, ledger.series, log.debug);
    },
    close: () => client.close(),
  };
  return backend;
};

export const remoteWrite: BackendModule = {
  openBackend,
  openReader: async (destination, log) => (await import('./reader.js')).openReader(destination, log),
};
