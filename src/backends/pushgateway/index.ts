import { redactUrl, trustOnly } from '../../adapters/http-endpoint.js';
import { newRecordId } from '../../adapters/random-id.js';
import { retryWithinBudget } from '../../adapters/retry.js';
import { serverNow } from '../../core/clock.js';
import type { Grouping, GroupRecord } from '../../core/record.js';
import type { Backend, BackendModule } from '../backend.js';
import { clockChecks } from '../clock-check.js';
import { groupPath, openGateway } from './client.js';
import { MERGED_RECORDS } from './deliver-limits.js';
import type { GroupState } from './model.js';
import type { Continuation } from './scraped-totals.js';

/**
 * The Pushgateway: cumulative counters and histograms per group, carried forward by a
 * read-merge-write of the group (deliver.ts) that remembers record identities.
 */
const openBackend: BackendModule['openBackend'] = (destination, log, { target, configured, timeoutSeconds }) => {
  const gateway = openGateway(
    configured ? destination : { ...destination, url: target.url, auth: {}, tls: {} },
    log,
    timeoutSeconds,
  );
  // Asking Prometheus whether the gateway lost a group's totals may take a third of --timeout in
  // all, so that a slow or hanging Prometheus leaves the record the time to be delivered.
  const seconds = Math.min(timeoutSeconds, destination.timeoutSeconds);
  let continuation: Continuation | undefined;
  // The gateway's now once one of its answers told it: what "in the future" means when a record is applied.
  const now = () => serverNow(gateway.clock, Date.now() / 1000);
  const clockCheck = clockChecks(() => gateway.clock, `the gateway at ${redactUrl(gateway.base)}`, log);
  // What merges a record into the group is loaded once a delivery needs it: the early read of the
  // group (prepare) is under way by then.
  const delivery = async (dryRun: boolean) => {
    const [{ deliver }, { prometheusContinuation }] = await Promise.all([
      import('./deliver.js'),
      import('./scraped-totals.js'),
    ]);
    continuation ??= prometheusContinuation({
      url: destination.prometheus,
      tls: trustOnly(destination.tls),
      gateway,
      budgetMs: (seconds * 1000) / 3,
      debug: log.debug,
    });
    const options = {
      dryRun,
      now,
      debug: log.debug,
      warn: log.warn,
      ...(!dryRun && continuation && { continueFrom: continuation }),
    };
    return { deliver, options };
  };

  /** A read of one group started by prepare(), for the next delivery to it. */
  let early: { path: string; read: Promise<GroupState> } | undefined;
  const takeEarly = (grouping: Grouping) => {
    const taken = early?.path === groupPath(grouping) ? early.read : undefined;
    early = undefined;
    return taken;
  };

  const backend: Backend = {
    target,
    remainingMs: () => gateway.remainingMs(),
    prepare(grouping) {
      const read = gateway.readGroup(grouping);
      read.catch(() => undefined); // a failed early read is read again by the delivery
      const prepared = { path: groupPath(grouping), read };
      early = prepared;
      return () => {
        if (early === prepared) early = undefined;
      };
    },
    async deliver(grouping: Grouping, record: GroupRecord, fix, { readBack = true, confirm = [] } = {}) {
      const firstRead = takeEarly(grouping);
      const { deliver, options } = await delivery(false);
      // The record's times are checked against the gateway's clock once the group's read answered, before it is applied.
      const check = clockCheck(fix);
      const {
        families: _families,
        exposition: _exposition,
        url: _url,
        ...delivered
      } = await deliver(gateway, grouping, record, {
        ...options,
        readBack,
        confirm,
        settle: check.settle,
        ...(firstRead && { firstRead }),
      });
      return {
        ...delivered,
        notices: [...check.notices, ...delivered.notices],
        ...(check.corrected && { record: check.corrected }),
      };
    },
    maxRecords: MERGED_RECORDS,
    async deliverMany(grouping, items, { readBack = true } = {}) {
      const [{ deliverMany }, { options }] = await Promise.all([import('./deliver.js'), delivery(false)]);
      const checks = items.map((item) => clockCheck(item.fix));
      // The read-back of the previous write to this group (its records on the gateway, seen) is this
      // write's read: one read per write. Anything else read this group meanwhile: read afresh.
      const firstRead = takeEarly(grouping);
      early = undefined;
      const { after, ...delivered } = await deliverMany(
        gateway,
        grouping,
        items.map((item) => item.record),
        checks.map((check) => check.settle),
        { ...options, readBack, ...(firstRead && { firstRead }) },
      );
      if (after) early = { path: groupPath(grouping), read: Promise.resolve(after) };
      return { ...delivered, notices: [...checks.flatMap((check) => check.notices), ...delivered.notices] };
    },
    async plan(grouping, record) {
      const { deliver, options } = await delivery(true);
      const planned = await deliver(gateway, grouping, record, { ...options, settle: clockCheck().settle });
      return {
        url: planned.url,
        text: `POST ${planned.url}\n\n${planned.exposition}`,
        json: { url: planned.url, exposition: planned.exposition },
      };
    },
    async confirm(grouping, stored) {
      const [{ value: state }, { confirmation }] = await Promise.all([
        retryWithinBudget(
          () => gateway.remainingMs(),
          log.debug,
          () => gateway.readGroup(grouping),
        ),
        import('./apply.js'),
      ]);
      return Object.fromEntries(stored.map((record) => [record.id, confirmation(state, record)]));
    },
    async markInProgress(grouping, startedAt) {
      // Best effort: no read-back for a mark the deployment's own record overwrites anyway.
      const { deliver, options } = await delivery(false);
      await deliver(
        gateway,
        grouping,
        { kind: 'start', id: newRecordId(), startedAt, timeFromClock: true },
        { ...options, readBack: false, settle: clockCheck().settle },
      );
    },
    close: () => gateway.close(),
  };
  return backend;
};

export const pushgateway: BackendModule = {
  openBackend,
  openReader: async (destination, log) => (await import('./reader.js')).openReader(destination, log),
};
