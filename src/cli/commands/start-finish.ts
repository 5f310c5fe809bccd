import { checkMetadataFlags, collectMetadata, type MetadataFlags } from '../../adapters/metadata/collect.js';
import { newRecordId } from '../../adapters/random-id.js';
import { UsageError } from '../../core/errors.js';
import type { DeploymentRecord, StartRecord, Status } from '../../core/record.js';
import { checkDuration, parseStatus, parseTimestamp } from '../../core/validate.js';
import {
  clearStarted,
  inferStatus,
  loadStarted,
  type StartedDeployment,
  saveStarted,
} from '../../recorder/state-dir.js';
import type { CommandContext } from '../context.js';
import { sendRecord } from '../send-record.js';
import { requireTarget } from '../settings.js';

export interface StartFlags extends MetadataFlags {
  startedAt?: string;
}

export interface FinishFlags extends MetadataFlags {
  status?: string;
  startedAt?: string;
  finishedAt?: string;
}

/**
 * `deployctl start`: marks the deployment in progress on the gateway (with its start time, so a
 * `finish` on another machine or CI step can time it) and keeps the start on this machine too.
 */
export async function startCommand(flags: StartFlags, context: CommandContext): Promise<number> {
  const { settings, now } = context;
  const target = requireTarget(settings);
  checkMetadataFlags(flags);
  const startedAt = flags.startedAt === undefined ? now() : parseTimestamp('--started-at', flags.startedAt, now());
  const grouping = { job: settings.job, ...target };
  if (!settings.dryRun) {
    // A state directory that cannot be written costs only the local note, never the record.
    await saveStarted(settings.stateDir, {
      grouping,
      startedAt,
      ...(flags.version !== undefined && { version: flags.version }),
      ...(flags.commit !== undefined && { commit: flags.commit }),
    }).catch((error: NodeJS.ErrnoException) =>
      context.reporter.warn(
        `the start could not be kept on this machine (${error.code ?? error.message}); give finish --status`,
      ),
    );
  }
  const record: StartRecord = {
    kind: 'start',
    id: newRecordId(),
    startedAt,
    labels: settings.labels,
    // Without --started-at the start time is this machine's clock: checked against the server's.
    ...(flags.startedAt === undefined && { timeFromClock: true }),
  };
  return sendRecord(context, grouping, record);
}

/** Without --status: from the steps this machine ran since `start`. */
function inferredStatus(local: StartedDeployment | undefined, { reporter }: CommandContext): Status {
  if (!local) {
    throw new UsageError(
      '--status is required here: no deployment was started on this machine, so its steps cannot tell how it ended',
      'give --status success, failure or cancelled, or run deployctl start first on this machine',
    );
  }
  const { status, because } = inferStatus(local);
  reporter.info(`no --status given: ${status}, as ${because}`);
  return status;
}

/**
 * `deployctl finish [--status S]`: closes what `start` opened. The start comes from --started-at,
 * else this machine's state directory, else the gateway (start ran elsewhere).
 */
export async function finishCommand(flags: FinishFlags, context: CommandContext): Promise<number> {
  const { settings, env, cwd, now } = context;
  const target = requireTarget(settings);
  checkMetadataFlags(flags);
  const finishedAt = flags.finishedAt === undefined ? now() : parseTimestamp('--finished-at', flags.finishedAt, now());
  const grouping = { job: settings.job, ...target };

  const local = await loadStarted(settings.stateDir, grouping);
  const status = flags.status === undefined ? inferredStatus(local, context) : parseStatus(flags.status);
  const startedAt =
    flags.startedAt === undefined ? local?.startedAt : parseTimestamp('--started-at', flags.startedAt, now());
  if (startedAt !== undefined && finishedAt < startedAt) {
    throw new UsageError(
      `the deployment finished (${new Date(finishedAt * 1000).toISOString()}) before it started (${new Date(startedAt * 1000).toISOString()})`,
    );
  }
  if (startedAt !== undefined) checkDuration('start to finish', finishedAt - startedAt);
  const metadata = await collectMetadata(
    {
      ...flags,
      ...(flags.version === undefined && local?.version !== undefined && { version: local.version }),
      ...(flags.commit === undefined && local?.commit !== undefined && { commit: local.commit }),
    },
    env,
    cwd,
    context.reporter.warn,
    context.reporter.note,
  );
  const record: DeploymentRecord = {
    kind: 'deployment',
    id: newRecordId(),
    status,
    labels: settings.labels,
    finishedAt,
    ...(flags.finishedAt === undefined && { timeFromClock: true }),
    // Without a start kept on this machine, only a deployment in progress on the gateway is closed:
    // a second finish (a retried CI step) is not counted.
    ...(local === undefined && { closesStart: true }),
    ...(startedAt === undefined ? { durationFromGatewayStart: true } : { durationSeconds: finishedAt - startedAt }),
    ...metadata,
  };
  const exitCode = await sendRecord(context, grouping, record);
  if (!settings.dryRun) {
    await clearStarted(settings.stateDir, grouping).catch((error: NodeJS.ErrnoException) =>
      context.reporter.warn(`the start kept on this machine could not be removed (${error.code ?? error.message})`),
    );
  }
  return exitCode;
}
