import { Gateway, groupPath } from './gateway/client.js';
import type { Grouping } from './gateway/group-state.js';
import { applyDeployment, type DeploymentRecord } from './metrics/apply.js';
import { FAMILIES } from './metrics/families.js';
import { renderExposition } from './metrics/exposition.js';
import type { Family, GroupState } from './metrics/model.js';
import { GatewayError } from './errors.js';
import type { Reporter } from './output.js';
import type { Settings } from './settings.js';

export interface Delivery {
  url: string;
  exposition: string;
  duplicate: boolean;
  /** Deployments by status on the gateway after this record. */
  totals: Record<string, number>;
  timeToRestore?: number;
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
 * Reads the group, carries its totals forward by this record and writes the changed families
 * back in one POST. Under --dry-run the read still happens (so the text is exact) but nothing is sent.
 */
export async function deliverDeployment(
  gateway: Gateway,
  grouping: Grouping,
  record: DeploymentRecord,
  options: { dryRun: boolean; now: () => number; warn?: (message: string) => void },
): Promise<Delivery> {
  const state = await readForDelivery(gateway, grouping, options);
  const applied = applyDeployment(state, record, options.now());
  const exposition = await renderExposition(applied.families);
  const url = gateway.displayUrl(groupPath(grouping));
  if (!applied.duplicate && !options.dryRun) await gateway.push(grouping, exposition);
  return {
    url,
    exposition,
    duplicate: applied.duplicate,
    totals: totalsByStatus(applied.families, record.labels),
    ...(applied.timeToRestore !== undefined && { timeToRestore: applied.timeToRestore }),
  };
}
