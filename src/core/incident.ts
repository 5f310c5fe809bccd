import { UsageError } from './errors.js';
import type { Grouping, IncidentRecord } from './record.js';
import { sha256Hex } from './sha256.js';
import { parseLabelValue } from './validate.js';

/**
 * Incidents: `deployctl incident open|resolve` by hand, and Alertmanager's webhook payload
 * (version 4) read into incident records. Pure: no clock, no file, no network.
 */

/** The incident id when none is given: one incident per service and environment. */
export const DEFAULT_INCIDENT_ID = 'default';

/** The alert labels that name an alert's service and environment. */
export interface IncidentLabelNames {
  service: string;
  environment: string;
}

export const DEFAULT_INCIDENT_LABELS: IncidentLabelNames = { service: 'service', environment: 'environment' };

/** One alert of Alertmanager's webhook payload, as far as deployctl reads it. */
interface AlertmanagerAlert {
  status: string;
  labels: Record<string, string>;
  startsAt: string;
  endsAt?: string;
  fingerprint?: string;
}

/** Alertmanager's webhook payload (version 4), as far as deployctl reads it. */
export interface AlertmanagerPayload {
  version: '4';
  status?: string;
  alerts: AlertmanagerAlert[];
}

/** One record to make, and the group it belongs to. */
export interface IncidentItem {
  grouping: Grouping;
  record: IncidentRecord;
}

/** Alerts that made no record: how many, and why. */
export interface SkippedAlerts {
  total: number;
  skipped: number;
  /** Reason to count, in the order first met. */
  reasons: Record<string, number>;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const PAYLOAD_HINT =
  "deployctl incident --from-alertmanager reads the JSON body Alertmanager's webhook receiver posts (version 4)";

/**
 * Checks that `text` is Alertmanager's webhook payload: JSON, version "4", an alerts array. A
 * payload that is not is the command line's mistake: nothing of it is recorded. Single alerts that
 * cannot be read are skipped later (incidentsFromAlertmanager), not here.
 */
export function readAlertmanagerPayload(text: string, where: string): AlertmanagerPayload {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${where} is not JSON: ${(error as Error).message}`, PAYLOAD_HINT);
  }
  if (!isObject(parsed)) throw new UsageError(`${where} is not a JSON object`, PAYLOAD_HINT);
  if (parsed.version !== '4') {
    throw new UsageError(
      `${where} is not an Alertmanager webhook payload of version 4 (its version is ${parsed.version === undefined ? 'missing' : JSON.stringify(parsed.version)})`,
      PAYLOAD_HINT,
    );
  }
  if (!Array.isArray(parsed.alerts)) throw new UsageError(`${where} has no alerts array`, PAYLOAD_HINT);
  return parsed as unknown as AlertmanagerPayload;
}

/**
 * Alertmanager's times: RFC 3339 with up to nanoseconds ("2026-12-05T18:10:00.123456789Z"), read
 * to the millisecond; undefined for anything else, and for Go's zero time (a firing alert's endsAt).
 */
export function alertmanagerTime(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.exec(value.trim());
  if (!match) return undefined;
  const fraction = match[2] ? match[2].slice(0, 4) : '';
  const ms = Date.parse(`${match[1]}${fraction}${match[3]}`);
  if (!Number.isFinite(ms) || ms <= 0) return undefined;
  return ms / 1000;
}

/**
 * A record id made from the record's content: the same incident, action and time in the same
 * group always get the same id, so a replayed payload is a duplicate the backend recognises.
 */
export function incidentRecordId(grouping: Grouping, incident: string, action: 'open' | 'resolve', at: number): string {
  return `inc-${sha256Hex(JSON.stringify([grouping.job, grouping.service, grouping.environment, incident, action, at])).slice(0, 32)}`;
}

/** An alert's identity when Alertmanager gave no fingerprint: a digest of its labels. */
function labelsFingerprint(labels: Record<string, string>): string {
  const sorted = Object.keys(labels)
    .sort()
    .map((name) => [name, labels[name]]);
  return sha256Hex(JSON.stringify(sorted)).slice(0, 16);
}

function isLabelValue(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  try {
    parseLabelValue('label', value);
    return true;
  } catch {
    return false;
  }
}

/**
 * The incident records an Alertmanager payload makes: each alert with the service and environment
 * labels opens an incident at its startsAt (id: its fingerprint); a resolved alert also resolves
 * it at its endsAt (with openedAt = startsAt), so a payload that only says resolved still counts.
 * Each alert goes to its own group. Alerts that cannot be read are counted in `skipped`.
 */
export function incidentsFromAlertmanager(
  payload: AlertmanagerPayload,
  {
    job,
    labels: names,
    attributionWindowSeconds,
  }: { job: string; labels: IncidentLabelNames; attributionWindowSeconds?: number },
): { items: IncidentItem[]; skipped: SkippedAlerts } {
  const items: IncidentItem[] = [];
  const skipped: SkippedAlerts = { total: payload.alerts.length, skipped: 0, reasons: {} };
  const skip = (reason: string) => {
    skipped.skipped++;
    skipped.reasons[reason] = (skipped.reasons[reason] ?? 0) + 1;
  };
  const seen = new Set<string>();
  for (const alert of payload.alerts as unknown[]) {
    if (!isObject(alert) || !isObject(alert.labels)) {
      skip('not an alert with labels');
      continue;
    }
    const labels = alert.labels as Record<string, unknown>;
    const service = labels[names.service];
    const environment = labels[names.environment];
    if (service === undefined || environment === undefined || service === '' || environment === '') {
      skip(`without the labels ${names.service} and ${names.environment}`);
      continue;
    }
    if (!isLabelValue(service) || !isLabelValue(environment)) {
      skip(`with a ${names.service} or ${names.environment} label that is not a valid label value`);
      continue;
    }
    const startsAt = alertmanagerTime(alert.startsAt);
    if (startsAt === undefined) {
      skip('without a startsAt time');
      continue;
    }
    const resolved = alert.status === 'resolved';
    if (!resolved && alert.status !== 'firing') {
      skip('with a status that is neither firing nor resolved');
      continue;
    }
    const endsAt = resolved ? alertmanagerTime(alert.endsAt) : undefined;
    if (resolved && (endsAt === undefined || endsAt < startsAt)) {
      skip('resolved without an endsAt time at or after its startsAt');
      continue;
    }
    const fingerprint =
      alert.fingerprint === undefined ? labelsFingerprint(labels as Record<string, string>) : alert.fingerprint;
    if (!isLabelValue(fingerprint)) {
      skip('with a fingerprint that is not a valid label value');
      continue;
    }
    const grouping: Grouping = { job, service, environment };
    const add = (record: IncidentRecord) => {
      // The same alert twice in one payload makes its records once.
      if (seen.has(record.id)) return;
      seen.add(record.id);
      items.push({ grouping, record });
    };
    add({
      kind: 'incident',
      id: incidentRecordId(grouping, fingerprint, 'open', startsAt),
      incident: fingerprint,
      action: 'open',
      at: startsAt,
      ...(attributionWindowSeconds !== undefined && { attributionWindowSeconds }),
    });
    if (endsAt !== undefined) {
      add({
        kind: 'incident',
        id: incidentRecordId(grouping, fingerprint, 'resolve', endsAt),
        incident: fingerprint,
        action: 'resolve',
        at: endsAt,
        openedAt: startsAt,
      });
    }
  }
  return { items, skipped };
}

/** The one notice line for skipped alerts: how many, and why. */
export function describeSkipped(skipped: SkippedAlerts): string | undefined {
  if (skipped.skipped === 0) return undefined;
  const why = Object.entries(skipped.reasons)
    .map(([reason, count]) => `${count} ${reason}`)
    .join('; ');
  return `skipped ${skipped.skipped} of ${skipped.total} alert(s), which open no incident: ${why}`;
}

/** The name of an alert label to read (--service-label, incident.serviceLabel): any Prometheus label name. */
export function parseAlertLabelName(where: string, name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new UsageError(
      `${where}: ${JSON.stringify(name)} is not a label name`,
      'label names start with a letter or _ and continue with letters, digits and _',
    );
  }
  return name;
}
