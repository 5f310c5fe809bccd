import { newRecordId } from '../../adapters/random-id.js';
import { retryWithinBudget } from '../../adapters/retry.js';
import { confirmation } from './apply.js';
import { deliver, openGateway } from './deliver.js';
import { groupPath } from './client.js';
import type { GroupState } from './model.js';
import { prometheusContinuation } from './continuation.js';
import type { Backend, OpenBackend } from '../backend.js';
import type { Grouping, GroupRecord } from '../../core/record.js';

/**
 * The Pushgateway: cumulative counters and histograms per group, carried forward by a
 * read-merge-write of the group (src/deliver.ts) that remembers record identities.
 */
export const openBackend: OpenBackend = (settings, reporter, { target, configured, timeoutSeconds }) => {
  const gatewaySettings = configured ? settings : { ...settings, pushgateway: target.url, auth: {}, tls: {} };
  const gateway = openGateway(gatewaySettings, reporter, timeoutSeconds);
  const now = () => Date.now() / 1000;
  const options = (dryRun: boolean) => ({
    dryRun,
    now,
    debug: reporter.debug,
    warn: reporter.warn,
    ...(!dryRun && { continueFrom: prometheusContinuation(settings.prometheus, gateway.remainingMs()) }),
  });

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
    async deliver(grouping: Grouping, record: GroupRecord, _fix, { readBack = true, confirm = [] } = {}) {
      const firstRead = takeEarly(grouping);
      const { families: _families, exposition: _exposition, url: _url, ...delivered } = await deliver(gateway, grouping, record, {
        ...options(false),
        readBack,
        confirm,
        ...(firstRead && { firstRead }),
      });
      return delivered;
    },
    async plan(grouping, record) {
      const planned = await deliver(gateway, grouping, record, options(true));
      return { url: planned.url, text: `POST ${planned.url}\n\n${planned.exposition}`, json: { url: planned.url, exposition: planned.exposition } };
    },
    async confirm(grouping, stored) {
      const { value: state } = await retryWithinBudget(() => gateway.remainingMs(), reporter.debug, () => gateway.readGroup(grouping));
      return Object.fromEntries(stored.map((record) => [record.id, confirmation(state, record)]));
    },
    async markInProgress(grouping, startedAt) {
      // Best effort: no read-back for a mark the deployment's own record overwrites anyway.
      await deliver(gateway, grouping, { kind: 'start', id: newRecordId(), startedAt }, { ...options(false), readBack: false });
    },
    close: () => gateway.close(),
  };
  return backend;
};
