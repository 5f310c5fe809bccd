import { parseWindow } from '../../adapters/prometheus.js';
import type { DoraAnswers, LabeledValue } from '../../backends/backend.js';
import { openReader } from '../../backends/index.js';
import { BAND_NAMES, BANDS, band, type KeyBands } from '../../core/dora/bands.js';
import type { CommandContext } from '../context.js';

export interface DoraFlags {
  window?: string;
}

interface Key {
  value: number | null;
  band: string | null;
}

interface DoraRow {
  job: string;
  service: string;
  environment: string;
  deployments: Record<string, number>;
  /** Deployments that are failed changes, each once whatever its reasons. */
  failedChanges: number;
  /** The same by the first reason that made each one (failure, rollback, verification, incident). */
  failedChangesByReason: Record<string, number>;
  rollbacks: number;
  /** Deployments made while a failed change was not yet recovered, and rollbacks. */
  reworkDeployments: number;
  /** Null over a window shorter than a day: a few hours say nothing about a daily rate. */
  deploymentFrequencyPerDay: Key;
  leadTimeSeconds: Key;
  /** Failed changes ÷ deployments (success and failure). */
  changeFailureRate: Key;
  /** Mean per failed change: from when its failure was known to recovery. */
  failedDeploymentRecoveryTimeSeconds: Key;
  /** Rework deployments ÷ deployments; DORA gives no band. */
  deploymentReworkRate: Key;
  /** Failed ÷ finished deployments: the deployment failure ratio. */
  deploymentFailureRate: number | null;
  /** The earlier "time to restore": first failure of a failing streak → the success that ended it. */
  timeToRestoreSeconds: Key;
}

export interface DoraView {
  kind: 'dora';
  window: string;
  /** Under a day: no daily frequency or band. */
  shortWindow: boolean;
  rows: DoraRow[];
  /** The query API that answered. */
  shownUrl: string;
}

const DAY = 86_400;

/** The keys per service and environment, from the answers of the backend's DORA queries. */
function doraRows(answers: DoraAnswers, shortWindow: boolean): DoraRow[] {
  const rows = new Map<string, DoraRow>();
  const keyOf = (labels: Record<string, string>) => JSON.stringify([labels.job, labels.service, labels.environment]);
  const rowOf = (labels: Record<string, string>) => {
    const key = keyOf(labels);
    let row = rows.get(key);
    if (!row) {
      const empty = { value: null, band: null };
      row = {
        job: labels.job ?? '',
        service: labels.service ?? '',
        environment: labels.environment ?? '',
        deployments: {},
        failedChanges: 0,
        failedChangesByReason: {},
        rollbacks: 0,
        reworkDeployments: 0,
        deploymentFrequencyPerDay: empty,
        leadTimeSeconds: empty,
        changeFailureRate: empty,
        failedDeploymentRecoveryTimeSeconds: empty,
        deploymentReworkRate: empty,
        deploymentFailureRate: null,
        timeToRestoreSeconds: empty,
      };
      rows.set(key, row);
    }
    return row;
  };
  for (const s of answers.deploymentsByStatus) rowOf(s.labels).deployments[s.labels.status ?? ''] = s.value;
  // Counts are read for the groups with deployments in the window only.
  const known = (s: LabeledValue) => rows.has(keyOf(s.labels));
  for (const s of answers.rollbacks.filter(known)) rowOf(s.labels).rollbacks = s.value;
  for (const s of answers.failedChanges.filter(known)) rowOf(s.labels).failedChanges = s.value;
  for (const s of answers.failedChangesByReason.filter(known))
    rowOf(s.labels).failedChangesByReason[s.labels.reason ?? ''] = s.value;
  for (const s of answers.reworkDeployments.filter(known)) rowOf(s.labels).reworkDeployments = s.value;
  for (const s of answers.deploymentFailureRate)
    if (Number.isFinite(s.value)) rowOf(s.labels).deploymentFailureRate = s.value;
  const fill = (
    samples: LabeledValue[],
    field: keyof Pick<
      DoraRow,
      | 'deploymentFrequencyPerDay'
      | 'leadTimeSeconds'
      | 'changeFailureRate'
      | 'failedDeploymentRecoveryTimeSeconds'
      | 'deploymentReworkRate'
      | 'timeToRestoreSeconds'
    >,
    bands: KeyBands | null,
  ) => {
    for (const s of samples) {
      if (!Number.isFinite(s.value)) continue;
      rowOf(s.labels)[field] = { value: s.value, band: bands ? BAND_NAMES[band(bands, s.value)] : null };
    }
  };
  if (!shortWindow) fill(answers.deploymentFrequencyPerDay, 'deploymentFrequencyPerDay', BANDS.deploymentFrequency);
  fill(answers.leadTimeMean, 'leadTimeSeconds', BANDS.leadTime);
  fill(answers.changeFailureRate, 'changeFailureRate', BANDS.changeFailureRate);
  fill(answers.failedDeploymentRecoveryMean, 'failedDeploymentRecoveryTimeSeconds', BANDS.failedDeploymentRecoveryTime);
  fill(answers.deploymentReworkRate, 'deploymentReworkRate', null);
  fill(answers.timeToRestoreMean, 'timeToRestoreSeconds', BANDS.timeToRestore);
  return [...rows.values()].sort(
    (a, b) => a.service.localeCompare(b.service) || a.environment.localeCompare(b.environment),
  );
}

/** `deployctl dora`: the five DORA metrics per service and environment, from the backend's query API. */
export async function doraCommand(
  flags: DoraFlags,
  { settings, destination, reporter }: CommandContext,
): Promise<DoraView> {
  const window = flags.window ?? '30d';
  const shortWindow = parseWindow(window) / DAY < 1;
  const filter = { job: settings.job, service: settings.service, environment: settings.environment };
  const reader = await openReader(destination, reporter, filter);
  try {
    const { answers, shownUrl } = await reader.dora(filter, window);
    return { kind: 'dora', window, shortWindow, rows: doraRows(answers, shortWindow), shownUrl };
  } finally {
    reader.close();
  }
}
