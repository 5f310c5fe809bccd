import { randomUUID } from 'node:crypto';
import { DeployctlError, ExitCode, UsageError } from '../errors.js';
import type { DeploymentRecord } from '../metrics/apply.js';
import { formatDuration, type Reporter } from '../output.js';
import { requireTarget, type Settings } from '../settings.js';
import { parseLabelValue, parseSeconds, parseStatus, parseTimestamp } from '../validate.js';
import { deliverDeployment, openGateway } from '../deliver.js';
import type { CommandContext } from '../context.js';

export interface RecordFlags {
  status?: string;
  version?: string;
  commit?: string;
  duration?: string;
  startedAt?: string;
  finishedAt?: string;
}

/** Works out when the deployment finished and how long it took; `now` is Unix seconds. */
export function resolveTiming(flags: RecordFlags, now: number): { finishedAt: number; durationSeconds?: number } {
  if (flags.duration !== undefined && flags.startedAt !== undefined) {
    throw new UsageError('give either --duration or --started-at, not both');
  }
  const finishedAt = flags.finishedAt === undefined ? now : parseTimestamp('--finished-at', flags.finishedAt);
  if (flags.duration !== undefined) {
    return { finishedAt, durationSeconds: parseSeconds('--duration', flags.duration) };
  }
  if (flags.startedAt !== undefined) {
    const startedAt = parseTimestamp('--started-at', flags.startedAt);
    if (finishedAt < startedAt) {
      throw new UsageError(`--finished-at (${new Date(finishedAt * 1000).toISOString()}) is before --started-at (${new Date(startedAt * 1000).toISOString()})`);
    }
    return { finishedAt, durationSeconds: finishedAt - startedAt };
  }
  return { finishedAt };
}

export function buildRecord(flags: RecordFlags, settings: Settings, now: number): DeploymentRecord {
  if (flags.status === undefined) throw new UsageError('--status is required (success, failure or cancelled)');
  const status = parseStatus(flags.status);
  const version = flags.version === undefined ? '' : parseLabelValue('--version', flags.version);
  const commit = flags.commit === undefined ? '' : parseLabelValue('--commit', flags.commit);
  return { id: randomUUID(), status, version, commit, labels: settings.labels, ...resolveTiming(flags, now) };
}

export async function recordCommand(flags: RecordFlags, { settings, reporter, now }: CommandContext): Promise<number> {
  const target = requireTarget(settings);
  const record = buildRecord(flags, settings, now());
  return sendRecord(settings, reporter, { job: settings.job, ...target }, record, now);
}

export async function sendRecord(
  settings: Settings,
  reporter: Reporter,
  grouping: { job: string; service: string; environment: string },
  record: DeploymentRecord,
  now: () => number,
): Promise<number> {
  const gateway = openGateway(settings, reporter);
  try {
    const delivery = await deliverDeployment(gateway, grouping, record, { dryRun: settings.dryRun, now, warn: reporter.warn });
    if (settings.dryRun) {
      if (settings.json) reporter.json({ dryRun: true, url: delivery.url, exposition: delivery.exposition });
      else reporter.raw(`POST ${delivery.url}\n\n${delivery.exposition}`);
      return 0;
    }
    const summary = {
      recorded: !delivery.duplicate,
      ...grouping,
      status: record.status,
      version: record.version,
      commit: record.commit,
      finishedAt: record.finishedAt,
      durationSeconds: record.durationSeconds ?? null,
      id: record.id,
      totals: delivery.totals,
      ...(delivery.timeToRestore !== undefined && { timeToRestoreSeconds: delivery.timeToRestore }),
      url: delivery.url,
    };
    if (settings.json) reporter.json(summary);
    const details = [
      record.version && `version ${record.version}`,
      record.durationSeconds !== undefined && `took ${formatDuration(record.durationSeconds)}`,
      delivery.timeToRestore !== undefined && `restored after ${formatDuration(delivery.timeToRestore)}`,
    ].filter(Boolean);
    const totals = Object.entries(delivery.totals).map(([status, n]) => `${status} ${n}`).join(', ');
    reporter.info(
      `recorded ${record.status} of ${grouping.service} in ${grouping.environment}${details.length ? ` (${details.join(', ')})` : ''}; deployments now: ${totals}`,
    );
    return 0;
  } catch (error) {
    if (error instanceof UsageError || !(error instanceof DeployctlError)) throw error;
    // The recorder never changes the outcome of a deploy: a metrics failure is a warning unless --strict.
    reporter.warn(`${record.status} of ${grouping.service} in ${grouping.environment} was not recorded: ${error.message}`);
    if (error.hint) reporter.warn(error.hint);
    return settings.strict ? ExitCode.failure : ExitCode.ok;
  } finally {
    gateway.close();
  }
}
