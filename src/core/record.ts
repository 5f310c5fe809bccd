import type { CommitNode } from './lead-time.js';
import { sha256Hex } from './sha256.js';

/**
 * The domain: a deployment target (group), a status, and the records deployctl makes. Every
 * other layer speaks these types; this file imports nothing but the core.
 */

/** One deployment target: a Pushgateway grouping key, a label set in a remote-write store. */
export interface Grouping {
  job: string;
  service: string;
  environment: string;
}

export const STATUSES = ['success', 'failure', 'cancelled'] as const;
export type Status = (typeof STATUSES)[number];

/** Label names to values. */
export type Labels = Record<string, string>;

/** Where a deployment came from, as CI or git tell it. */
export interface DeploymentSource {
  ci: string;
  branch: string;
  repository: string;
  buildUrl: string;
}

/**
 * How a record's time relates to the clock of the machine that made it. Times read from that clock
 * are checked against the server's before they are written, and corrected when it is far off
 * (core/clock.ts); times the user gave (--finished-at, --started-at) are the user's.
 */
interface RecordClock {
  /** Its time (finishedAt, startedAt) was read from this machine's clock when it was made. */
  timeFromClock?: true;
  /**
   * Seconds its time was moved by when it was checked against the server's clock: kept with the
   * record, so that a resend is identical and the record is never checked again.
   */
  clockCorrection?: number;
}

/** One finished deployment, as it is kept in the outbox and applied to its group. */
export interface DeploymentRecord extends RecordClock {
  kind: 'deployment';
  id: string;
  status: Status;
  /** Unix seconds. */
  finishedAt: number;
  durationSeconds?: number;
  /** Take the duration from the start that `deployctl start` left on the gateway. */
  durationFromGatewayStart?: boolean;
  version: string;
  commit: string;
  /** Extra labels from --label, on the counter, the duration histogram and the info metric. */
  labels: Labels;
  source?: DeploymentSource;
  /** The deployed commit and its ancestors (newest first, bounded), for lead time. */
  history?: CommitNode[];
  /** --commit-time: the deployed commit's time, overriding git (Unix seconds). */
  commitTime?: number;
  /** `deployctl finish`: counted only when it closes a deployment in progress. */
  closesStart?: boolean;
}

/** `deployctl start`: a deployment is in progress. */
export interface StartRecord extends RecordClock {
  kind: 'start';
  id: string;
  startedAt: number;
  /** Extra labels from --label, for the deployment this start replaces, if any. */
  labels?: Labels;
}

/** `deployctl step`: one timed step of a deployment. */
export interface StepRecord extends RecordClock {
  kind: 'step';
  id: string;
  step: string;
  status: Status;
  finishedAt: number;
  durationSeconds: number;
}

export const VERIFICATION_RESULTS = ['pass', 'fail', 'inconclusive'] as const;
export type VerificationResult = (typeof VERIFICATION_RESULTS)[number];

/**
 * `deployctl verify`: the verdict of a gate run after a deploy, recorded against the group's latest
 * deployment (the latest that finished before `startedAt`). A `fail` makes that deployment a failed change.
 */
export interface VerificationRecord extends RecordClock {
  kind: 'verification';
  id: string;
  result: VerificationResult;
  /** Unix seconds: when the checks began. */
  startedAt: number;
  /** Unix seconds: when the verdict was reached (a failure is known from then). */
  finishedAt: number;
}

/**
 * `deployctl incident open|resolve`: production of the group is failing, or is not any more. The
 * incident id identifies it across records and machines; opening an open incident, or resolving
 * one that is not open, changes nothing.
 */
export interface IncidentRecord extends RecordClock {
  kind: 'incident';
  id: string;
  /** The incident's own id (default: one per group; Alertmanager: the alert's fingerprint). */
  incident: string;
  action: 'open' | 'resolve';
  /** Unix seconds: when it opened (open) or was resolved (resolve). */
  at: number;
  /** resolve: when the incident opened, where the source says (Alertmanager's startsAt). */
  openedAt?: number;
  /**
   * open: how long after a deployment's finish this incident is still attributed to it, in seconds,
   * when not the default 24 h (`incident --attribution-window`).
   */
  attributionWindowSeconds?: number;
}

export type GroupRecord = DeploymentRecord | StartRecord | StepRecord | VerificationRecord | IncidentRecord;

/** The field that holds a record's own time: when it happened, as it is stamped and checked against a clock. */
export function timeField(record: GroupRecord): 'startedAt' | 'finishedAt' | 'at' {
  return record.kind === 'start' ? 'startedAt' : record.kind === 'incident' ? 'at' : 'finishedAt';
}

/** A record's own time (Unix seconds): see timeField. */
export function recordTime(record: GroupRecord): number {
  return (record as unknown as Record<string, number>)[timeField(record)]!;
}

/** Where a record is meant to go: a backend and its URL, never with credentials. */
export interface Target {
  backend: 'pushgateway' | 'remote-write';
  /** The base URL without user, password or query. */
  url: string;
}

export const sameTarget = (a: Target, b: Target) => a.backend === b.backend && a.url === b.url;

/** A file name for a group that reveals nothing and survives any service or environment name. */
export function groupFileName(grouping: Grouping): string {
  return sha256Hex(JSON.stringify([grouping.job, grouping.service, grouping.environment])).slice(0, 32);
}
