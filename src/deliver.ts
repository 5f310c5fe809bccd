import { GatewayError } from './errors.js';
import { Gateway, groupPath } from './gateway/client.js';
import type { Grouping } from './gateway/group-state.js';
import { applyRecord, type Applied, type GroupRecord } from './metrics/apply.js';
import { FAMILIES } from './metrics/families.js';
import { renderExposition } from './metrics/exposition.js';
import type { Family, GroupState } from './metrics/model.js';
import type { Reporter } from './output.js';
import type { Settings } from './settings.js';

export interface Delivery extends Applied {
  url: string;
  exposition: string;
  /** Deployments by status on the gateway after this record (deployment records only). */
  totals: Record<string, number>;
}

export function openGateway(settings: Settings, reporter: Reporter): Gateway {
  return new Gateway({ url: settings.pushgateway, timeoutMs: settings.timeoutSeconds * 1000, log: reporter.debug });
}

function totalsByStatus(families: Family[], labels: Record<string, string>): Record<string, number> {
  const totals: Record<string, number> = {};
  const counter = families.find((f) => f.name === FAMILIES.deployments.name);
  for (const series of counter?.series ?? []) {
    const { status, ...rest } = series.labels;
    if (status === undefined || !('value' in series)) continue;
    if (Object.keys(rest).length !== Object.keys(labels).length || Object.entries(labels).some(([k, v]) => rest[k] !== v)) continue;
    totals[status] = series.value;
  }
  return totals;
}

async function readForDelivery(gateway: Gateway, grouping: Grouping, options: { dryRun: boolean; warn?: (message: string) => void }) {
  try {
    return await gateway.readGroup(grouping);
  } catch (error) {
    if (!options.dryRun || !(error instanceof GatewayError)) throw error;
    options.warn?.(`${error.message}; showing the push for a group the gateway does not hold yet`);
    return new Map() as GroupState;
  }
}

/**
 * Reads the group, carries it forward by this record and writes the changed families back in
 * one POST. Under --dry-run the read still happens (so the text is exact) but nothing is sent.
 */
export async function deliver(
  gateway: Gateway,
  grouping: Grouping,
  record: GroupRecord,
  options: { dryRun: boolean; now: () => number; warn?: (message: string) => void },
): Promise<Delivery> {
  const state = await readForDelivery(gateway, grouping, options);
  const applied = applyRecord(state, record, options.now());
  const exposition = await renderExposition(applied.families);
  if (!applied.duplicate && !options.dryRun) await gateway.push(grouping, exposition);
  return {
    ...applied,
    url: gateway.displayUrl(groupPath(grouping)),
    exposition,
    totals: record.kind === 'deployment' ? totalsByStatus(applied.families, record.labels) : {},
  };
}
