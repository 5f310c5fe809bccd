import { checkMetadataFlags, collectMetadata, type MetadataFlags } from '../../adapters/metadata/collect.js';
import { newRecordId } from '../../adapters/random-id.js';
import { UsageError } from '../../core/errors.js';
import type { DeploymentRecord } from '../../core/record.js';
import { checkDuration, parseDuration, parseStatus, parseTimestamp } from '../../core/validate.js';
import type { CommandContext } from '../context.js';
import { sendRecord } from '../send-record.js';
import { requireTarget } from '../settings.js';

export interface RecordFlags extends MetadataFlags {
  status?: string;
  duration?: string;
  startedAt?: string;
  finishedAt?: string;
}

/** Works out when the deployment finished and how long it took; `now` is Unix seconds. */
export function resolveTiming(flags: RecordFlags, now: number): { finishedAt: number; durationSeconds?: number } {
  if (flags.duration !== undefined && flags.startedAt !== undefined) {
    throw new UsageError('give either --duration or --started-at, not both');
  }
  const finishedAt = flags.finishedAt === undefined ? now : parseTimestamp('--finished-at', flags.finishedAt, now);
  if (flags.duration !== undefined) {
    return { finishedAt, durationSeconds: parseDuration('--duration', flags.duration) };
  }
  if (flags.startedAt !== undefined) {
    const startedAt = parseTimestamp('--started-at', flags.startedAt, now);
    if (finishedAt < startedAt) {
      throw new UsageError(
        `--finished-at (${new Date(finishedAt * 1000).toISOString()}) is before --started-at (${new Date(startedAt * 1000).toISOString()})`,
      );
    }
    return { finishedAt, durationSeconds: checkDuration('--started-at to --finished-at', finishedAt - startedAt) };
  }
  return { finishedAt };
}

export async function recordCommand(flags: RecordFlags, context: CommandContext): Promise<number> {
  const { settings, env, cwd, now } = context;
  const target = requireTarget(settings);
  if (flags.status === undefined) throw new UsageError('--status is required (success, failure or cancelled)');
  const status = parseStatus(flags.status);
  const timing = resolveTiming(flags, now());
  checkMetadataFlags(flags);
  // Version, commit and history (git) are read while the group's lock is taken and its read leaves.
  const record: Promise<DeploymentRecord> = collectMetadata(
    flags,
    env,
    cwd,
    context.reporter.warn,
    context.reporter.note,
  ).then((metadata) => ({
    kind: 'deployment',
    id: newRecordId(),
    status,
    labels: settings.labels,
    ...metadata,
    ...timing,
    // Without --finished-at the finish time is this machine's clock: checked against the server's.
    ...(flags.finishedAt === undefined && { timeFromClock: true }),
  }));
  return sendRecord(context, { job: settings.job, ...target }, record);
}
