import type { IncidentRecord, VerificationRecord, VerificationResult } from './record.js';

/**
 * Failed changes as DORA counts them, the same on every backend: from what a group remembers and
 * one new event, which deployment becomes a failed change (and why), which failed change recovers
 * (and after how long), which deployment is rework, and what the group remembers next. Pure.
 * Decisions go by the events' own times, not by the order they arrive in.
 */

export const FAILED_CHANGE_REASONS = ['failure', 'rollback', 'verification', 'incident'] as const;
export type FailedChangeReason = (typeof FAILED_CHANGE_REASONS)[number];

/**
 * How long after a deployment's finish an incident is still attributed to it, unless the incident
 * says otherwise (its record carries the window it was opened with, so every recorder and every
 * replay of the group decides alike).
 */
export const ATTRIBUTION_WINDOW_SECONDS = 24 * 60 * 60;
/** The shortest and longest attribution window an incident may carry (a store reads a week ahead of a record). */
export const ATTRIBUTION_WINDOW_BOUNDS = { min: 60, max: 7 * 24 * 60 * 60 } as const;
/** What an incident opened outside every deployment's attribution window is told. */
export function unattributedNotice(windowSeconds = ATTRIBUTION_WINDOW_SECONDS): string {
  const hours = windowSeconds / 3600;
  const window = Number.isInteger(hours) ? `${hours} h` : `${Math.round(windowSeconds / 60)} min`;
  return `this incident is attributed to no deployment (none finished in the ${window} before it opened): no failed change`;
}

/** How many recent deployments a group remembers for failed changes. */
export const REMEMBERED_DEPLOYMENTS = 20;
/** How many open incidents a group remembers. */
const REMEMBERED_OPEN_INCIDENTS = 50;
/** How many resolved incident ids a group remembers (so that a replayed open changes nothing). */
const REMEMBERED_RESOLVED_INCIDENTS = 100;

export interface RememberedDeployment {
  /** Identifies it inside its group (a record id, a sample time). */
  key: string;
  /** Finish time, Unix seconds. */
  at: number;
  status: 'success' | 'failure';
  rollback: boolean;
  /** Set when it is a failed change. */
  reason?: FailedChangeReason;
  /** When its failure was known. */
  knownAt?: number;
  /** When it recovered. */
  recoveredAt?: number;
  rework: boolean;
}

export interface RememberedIncident {
  incident: string;
  openedAt: number;
  /** Set once resolved. */
  resolvedAt?: number;
  /** The deployment it is attributed to (it made it a failed change unless it was one already). */
  deployment?: string;
  /** Its attribution window in seconds, when not the default. */
  window?: number;
}

export interface FailureMemory {
  /** Oldest first, by finish time. */
  deployments: RememberedDeployment[];
  /** Open incidents, oldest first. */
  open: RememberedIncident[];
  /** Resolved incidents, oldest resolution first. */
  resolved: RememberedIncident[];
}

export const emptyMemory = (): FailureMemory => ({ deployments: [], open: [], resolved: [] });

export type FailureEvent =
  | { kind: 'deployment'; key: string; at: number; status: 'success' | 'failure'; rollback: boolean }
  | { kind: 'verification'; result: VerificationResult; startedAt: number; finishedAt: number }
  | {
      kind: 'incident';
      incident: string;
      action: 'open' | 'resolve';
      at: number;
      openedAt?: number;
      /** open: the attribution window in seconds, when not the default. */
      window?: number;
    };

/** A verification record as the model takes it. */
export function verificationEvent(record: VerificationRecord): FailureEvent {
  return { kind: 'verification', result: record.result, startedAt: record.startedAt, finishedAt: record.finishedAt };
}

/** An incident record as the model takes it (its window, when the open carries one). */
export function incidentEvent(record: IncidentRecord): FailureEvent {
  return {
    kind: 'incident',
    incident: record.incident,
    action: record.action,
    at: record.at,
    ...(record.openedAt !== undefined && { openedAt: record.openedAt }),
    ...(record.attributionWindowSeconds !== undefined && { window: record.attributionWindowSeconds }),
  };
}

interface FailedChange {
  /** The failed deployment's key and finish time. */
  deployment: string;
  at: number;
  reason: FailedChangeReason;
}

interface Recovery {
  deployment: string;
  /** When it recovered (the success, the rollback, the incident's resolution). */
  at: number;
  /** When the recovery event is a remembered deployment (or this one): its key. */
  by?: string;
  seconds: number;
}

export interface FailureOutcome {
  memory: FailureMemory;
  /** Deployments that became failed changes, each once. */
  failedChanges: FailedChange[];
  recoveries: Recovery[];
  /** Deployments that became rework (this one, or remembered ones a late failed change covers). */
  rework: { deployment: string; at: number }[];
  /** An incident open or resolve that changed something. */
  incident?: 'open' | 'resolve';
  /** The incident opened was attributed to no deployment. */
  unattributed?: boolean;
}

function clone(memory: FailureMemory): FailureMemory {
  return {
    deployments: memory.deployments.map((d) => ({ ...d })),
    open: memory.open.map((i) => ({ ...i })),
    resolved: memory.resolved.map((i) => ({ ...i })),
  };
}

/** The finish of the group's first success at or after `from` (other than `except`), if remembered. */
function nextSuccess(memory: FailureMemory, from: number, except: string): RememberedDeployment | undefined {
  return memory.deployments.find((d) => d.status === 'success' && d.at >= from && d.key !== except);
}

/**
 * Applies one event. A deployment whose key the memory already holds changes nothing (the
 * backends dedupe records before this; this keeps a replay harmless too).
 */
export function applyFailureEvent(
  given: FailureMemory,
  event: FailureEvent,
  { window = ATTRIBUTION_WINDOW_SECONDS }: { window?: number } = {},
): FailureOutcome {
  const memory = clone(given);
  const out: FailureOutcome = { memory, failedChanges: [], recoveries: [], rework: [] };

  const markFailed = (d: RememberedDeployment, reason: FailedChangeReason, knownAt: number, recoveredBy?: number) => {
    if (d.reason) return;
    d.reason = reason;
    d.knownAt = knownAt;
    out.failedChanges.push({ deployment: d.key, at: d.at, reason });
    // Recovered already: by the given time (a rollback), or, except for an incident, by a remembered
    // success after its failure was known (a record that arrived late).
    let recoveredAt = recoveredBy;
    let by: string | undefined;
    if (recoveredAt === undefined && reason !== 'incident') {
      const success = nextSuccess(memory, knownAt, d.key);
      if (success) {
        recoveredAt = success.at;
        by = success.key;
      }
    }
    if (recoveredAt !== undefined) {
      d.recoveredAt = recoveredAt;
      out.recoveries.push({
        deployment: d.key,
        at: recoveredAt,
        seconds: Math.max(0, recoveredAt - knownAt),
        ...(by && { by }),
      });
    }
    // Deployments that finished while it was known and not yet recovered are rework.
    for (const other of memory.deployments) {
      if (other.key === d.key || other.rework) continue;
      if (other.at >= knownAt && (d.recoveredAt === undefined || other.at <= d.recoveredAt)) {
        other.rework = true;
        out.rework.push({ deployment: other.key, at: other.at });
      }
    }
  };

  if (event.kind === 'deployment') {
    if (memory.deployments.some((d) => d.key === event.key)) return out;
    const d: RememberedDeployment = {
      key: event.key,
      at: event.at,
      status: event.status,
      rollback: event.rollback,
      rework: false,
    };
    // Rework: a rollback, or another failed change known and not recovered when it finished.
    const reworked =
      event.rollback ||
      memory.deployments.some(
        (o) => o.reason && o.knownAt! <= d.at && (o.recoveredAt === undefined || o.recoveredAt >= d.at),
      );
    const replaced = event.rollback
      ? memory.deployments.filter((o) => o.status === 'success' && o.at <= d.at).at(-1)
      : undefined;
    memory.deployments.push(d);
    memory.deployments.sort((a, b) => a.at - b.at);
    if (reworked) {
      d.rework = true;
      out.rework.push({ deployment: d.key, at: d.at });
    }
    if (replaced) markFailed(replaced, 'rollback', replaced.at, d.at);
    if (event.status === 'success') {
      // The next success after a failure was known recovers it (an incident recovers at its resolution).
      for (const o of memory.deployments) {
        if (!o.reason || o.reason === 'incident' || o.recoveredAt !== undefined || o.key === d.key) continue;
        if (o.knownAt! <= d.at) {
          o.recoveredAt = d.at;
          out.recoveries.push({ deployment: o.key, at: d.at, by: d.key, seconds: Math.max(0, d.at - o.knownAt!) });
        }
      }
    } else {
      markFailed(d, 'failure', d.at);
    }
    // An incident already known (a deployment record sent late) that opened while this was the
    // latest success is attributed to it.
    if (event.status === 'success') {
      for (const incident of [...memory.open, ...memory.resolved]) {
        if (incident.deployment !== undefined) continue;
        if (incident.openedAt < d.at || incident.openedAt - d.at > (incident.window ?? window)) continue;
        const latest = memory.deployments.filter((o) => o.status === 'success' && o.at <= incident.openedAt).at(-1);
        if (latest?.key !== d.key) continue;
        incident.deployment = d.key;
        markFailed(d, 'incident', incident.openedAt, incident.resolvedAt);
      }
    }
    memory.deployments.splice(0, Math.max(0, memory.deployments.length - REMEMBERED_DEPLOYMENTS));
    return out;
  }

  if (event.kind === 'verification') {
    if (event.result !== 'fail') return out;
    const judged = memory.deployments.filter((d) => d.at <= event.startedAt).at(-1);
    if (judged) markFailed(judged, 'verification', event.finishedAt);
    return out;
  }

  // An incident.
  if (event.action === 'open') {
    if (memory.open.some((i) => i.incident === event.incident)) return out;
    const resolved = memory.resolved.filter((i) => i.incident === event.incident);
    if (resolved.some((i) => event.at < i.resolvedAt!)) return out; // a stale replay
    const incident: RememberedIncident = {
      incident: event.incident,
      openedAt: event.at,
      ...(event.window !== undefined && { window: event.window }),
    };
    memory.open.push(incident);
    memory.open.sort((a, b) => a.openedAt - b.openedAt);
    memory.open.splice(0, Math.max(0, memory.open.length - REMEMBERED_OPEN_INCIDENTS));
    out.incident = 'open';
    const latest = memory.deployments.filter((d) => d.status === 'success' && d.at <= event.at).at(-1);
    if (latest && event.at - latest.at <= (event.window ?? window)) {
      incident.deployment = latest.key;
      markFailed(latest, 'incident', event.at);
    } else out.unattributed = true;
    return out;
  }
  const index = memory.open.findIndex((i) => i.incident === event.incident);
  if (index < 0) return out;
  const [incident] = memory.open.splice(index, 1);
  incident!.resolvedAt = Math.max(event.at, incident!.openedAt);
  memory.resolved.push(incident!);
  memory.resolved.splice(0, Math.max(0, memory.resolved.length - REMEMBERED_RESOLVED_INCIDENTS));
  out.incident = 'resolve';
  const failed = incident!.deployment ? memory.deployments.find((d) => d.key === incident!.deployment) : undefined;
  // Only the incident that made it a failed change recovers it.
  if (failed?.reason === 'incident' && failed.knownAt === incident!.openedAt && failed.recoveredAt === undefined) {
    failed.recoveredAt = incident!.resolvedAt;
    out.recoveries.push({
      deployment: failed.key,
      at: incident!.resolvedAt!,
      seconds: Math.max(0, incident!.resolvedAt! - failed.knownAt!),
    });
  }
  return out;
}
