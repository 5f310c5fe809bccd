import { readFile } from 'node:fs/promises';
import { newRecordId } from '../../adapters/random-id.js';
import { UsageError } from '../../core/errors.js';
import { recordExitCode } from '../../core/exit-codes.js';
import { ATTRIBUTION_WINDOW_SECONDS } from '../../core/failed-change.js';
import {
  type AlertmanagerPayload,
  DEFAULT_INCIDENT_ID,
  type IncidentItem,
  incidentRecordId,
  incidentsFromAlertmanager,
  parseAlertLabelName,
  readAlertmanagerPayload,
  type SkippedAlerts,
} from '../../core/incident.js';
import type { Grouping, IncidentRecord } from '../../core/record.js';
import { parseAttributionWindow, parseLabelValue, parseTimestamp } from '../../core/validate.js';
import { recordOne } from '../../recorder/record-one.js';
import { type CommandContext, recorderContext } from '../context.js';
import { renderIncidentOutcomes, waitNotice } from '../render/output.js';
import { requireTarget } from '../settings.js';

export interface IncidentFlags {
  id?: string;
  at?: string;
  fromAlertmanager?: string;
  serviceLabel?: string;
  envLabel?: string;
  attributionWindow?: string;
}

/** What the command line asks for, checked before anything else is read. */
export type IncidentLine = (
  | { kind: 'hand'; action: 'open' | 'resolve'; incident: string }
  | { kind: 'alertmanager'; payload: AlertmanagerPayload }
) & {
  /** --attribution-window, in seconds. */
  window?: number;
};

/** A payload larger than this is not Alertmanager's (it truncates to max_alerts long before). */
const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;

async function readPayloadText(source: string): Promise<string> {
  if (source === '-') {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_PAYLOAD_BYTES)
        throw new UsageError(`stdin: the payload is larger than ${MAX_PAYLOAD_BYTES} bytes`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  }
  try {
    const text = await readFile(source);
    if (text.length > MAX_PAYLOAD_BYTES)
      throw new UsageError(`${source}: the payload is larger than ${MAX_PAYLOAD_BYTES} bytes`);
    return text.toString('utf8');
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(
      `--from-alertmanager: cannot read ${source}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

/**
 * Checks the command line: `open` or `resolve`, or `--from-alertmanager` (whose payload is read and
 * checked here, so that a payload that is not Alertmanager's exits 2 with nothing recorded).
 */
export async function checkIncidentLine(operands: string[], flags: IncidentFlags): Promise<IncidentLine> {
  const [action, ...extra] = operands;
  if (extra.length > 0) throw new UsageError(`incident takes one action (open or resolve), not ${operands.join(' ')}`);
  const window =
    flags.attributionWindow === undefined
      ? {}
      : { window: parseAttributionWindow('--attribution-window', flags.attributionWindow) };
  if (action === 'resolve' && flags.attributionWindow !== undefined)
    throw new UsageError('--attribution-window is taken when an incident opens, not when it is resolved');
  if (flags.fromAlertmanager !== undefined) {
    if (action !== undefined)
      throw new UsageError(`give either ${action} or --from-alertmanager, not both`, 'the payload says what to do');
    for (const [given, flag] of [
      [flags.id, '--id'],
      [flags.at, '--at'],
    ] as const) {
      if (given !== undefined)
        throw new UsageError(`${flag} is not taken with --from-alertmanager: each alert has its own id and times`);
    }
    if (flags.serviceLabel !== undefined) parseAlertLabelName('--service-label', flags.serviceLabel);
    if (flags.envLabel !== undefined) parseAlertLabelName('--env-label', flags.envLabel);
    const source = flags.fromAlertmanager;
    const where = source === '-' ? 'the payload on stdin' : source;
    return {
      kind: 'alertmanager',
      payload: readAlertmanagerPayload(await readPayloadText(source), where),
      ...window,
    };
  }
  if (action === undefined)
    throw new UsageError(
      'incident needs an action: open or resolve, or --from-alertmanager FILE',
      'deployctl incident open --service api --env production',
    );
  if (action !== 'open' && action !== 'resolve')
    throw new UsageError(`incident ${JSON.stringify(action)}: the action is open or resolve`);
  for (const [given, flag] of [
    [flags.serviceLabel, '--service-label'],
    [flags.envLabel, '--env-label'],
  ] as const) {
    if (given !== undefined) throw new UsageError(`${flag} is only taken with --from-alertmanager`);
  }
  const incident = flags.id === undefined ? DEFAULT_INCIDENT_ID : parseLabelValue('--id', flags.id);
  return { kind: 'hand', action, incident, ...window };
}

/** The records to make: one by hand, or those of an Alertmanager payload. */
function itemsOf(
  line: IncidentLine,
  flags: IncidentFlags,
  context: CommandContext,
): { items: IncidentItem[]; skipped?: SkippedAlerts } {
  const { settings } = context;
  // The window an open carries (only when not the default, so that records stay as they were).
  const window = line.window ?? settings.incidentAttributionWindow;
  const attributionWindowSeconds = window === undefined || window === ATTRIBUTION_WINDOW_SECONDS ? undefined : window;
  if (line.kind === 'alertmanager') {
    return incidentsFromAlertmanager(line.payload, {
      job: settings.job,
      ...(attributionWindowSeconds !== undefined && { attributionWindowSeconds }),
      labels: {
        service: flags.serviceLabel ?? settings.incidentLabels.service,
        environment: flags.envLabel ?? settings.incidentLabels.environment,
      },
    });
  }
  const grouping: Grouping = { job: settings.job, ...requireTarget(settings) };
  const at = flags.at === undefined ? context.now() : parseTimestamp('--at', flags.at, context.now());
  const record: IncidentRecord = {
    kind: 'incident',
    // A time given by hand makes the same record each time (a repeated command is a duplicate).
    id: flags.at === undefined ? newRecordId() : incidentRecordId(grouping, line.incident, line.action, at),
    incident: line.incident,
    action: line.action,
    at,
    ...(line.action === 'open' && attributionWindowSeconds !== undefined && { attributionWindowSeconds }),
    // Without --at the time is this machine's clock: checked against the server's.
    ...(flags.at === undefined && { timeFromClock: true }),
  };
  return { items: [{ grouping, record }] };
}

/**
 * `deployctl incident`: each record goes through the recorder like any other (kept and resent when
 * the backend cannot take it now); the exit code is the worst of the records' (0 when kept, 1 under
 * --strict).
 */
export async function incidentCommand(
  line: IncidentLine,
  flags: IncidentFlags,
  context: CommandContext,
): Promise<number> {
  const { items, skipped } = itemsOf(line, flags, context);
  const notice = waitNotice(context.settings);
  const outcomes = [];
  let exitCode = 0;
  for (const { grouping, record } of items) {
    const outcome = await recordOne(recorderContext(context), grouping, record, {
      waitingFor: notice.waitingFor,
      doneWaiting: notice.done,
    });
    outcomes.push(outcome);
    exitCode = Math.max(exitCode, recordExitCode(outcome, context.settings.strict));
  }
  renderIncidentOutcomes(outcomes, skipped, context.settings, context.reporter);
  return exitCode;
}
