import type { EndpointAuth, EndpointTls } from '../adapters/http-endpoint.js';
import type { FailedChangeReason } from '../core/failed-change.js';
import type { Log } from '../core/log.js';
import type { Grouping, GroupRecord, Labels, Target } from '../core/record.js';

/**
 * Where records go and how to reach it, built once from the settings (src/cli/settings.ts,
 * destinationOf): everything a backend needs of the configuration, and nothing else.
 */
export interface Destination {
  /** Which backend, and its URL as shown and kept with records (no credentials). */
  target: Target;
  /** The backend's URL as configured: credentials in it become an authorization header, never shown. */
  url: string;
  /** A Prometheus query API (--prometheus): the store's own on remote-write, the one scraping the gateway otherwise. */
  prometheus: string | undefined;
  auth: EndpointAuth;
  tls: EndpointTls;
  /** Where this machine keeps what it remembers between invocations. */
  stateDir: string;
  /** The whole budget of one command's requests (--timeout). */
  timeoutSeconds: number;
}

/** What a backend says about one record it has delivered: data for the report, nothing printed. */
export interface Delivered {
  /** The backend had this record already (an earlier attempt or process stored it): nothing was counted again. */
  duplicate: boolean;
  /** Things worth one line to the user (lead time fell back to the deployed commit alone, …). */
  notices: string[];
  durationSeconds?: number;
  leadTimes?: number[];
  timeToRestore?: number;
  /** Deployments that this record made failed changes: why, and each one's finish time. */
  failedChanges?: { reason: FailedChangeReason; at: number }[];
  /** Failed deployment recovery times this record observed, in seconds. */
  recoverySeconds?: number[];
  /** This deployment is rework (a fix of a failed change not yet recovered, a retry, a rollback). */
  rework?: boolean;
  /** Deployments by status after this record, where the backend knows them. */
  totals?: Record<string, number>;
  attempts: number;
  /** Stored without a read-back: a later read of the group must show it (see DeliverOptions.confirm). */
  unconfirmed?: boolean;
  /** The group's sequence number given to this record, where the backend numbers them. */
  sequence?: number;
  /** What this delivery's read said of each record asked about in `confirm`, by id. */
  confirmed?: Record<string, Confirmation>;
  /** The record as written, when its times were corrected against the server's clock (core/clock.ts). */
  record?: GroupRecord;
}

/** What a read of a group says of a record stored earlier without a read-back. @public */
export type Confirmation = 'held' | 'replaced' | 'unknown';

/** A record stored without a read-back, by its id and the group's sequence number given to it. @public */
export interface StoredRecord {
  id: string;
  sequence: number;
}

export interface DeliverOptions {
  /** Check right after the write that the record is there (default); without it the delivery may be unconfirmed. */
  readBack?: boolean;
  /** Unconfirmed records of the same group, to be looked for in the read this delivery makes anyway. */
  confirm?: readonly StoredRecord[];
}

/** The exact request a record would make, for --dry-run. */
export interface Plan {
  url: string;
  /** The request as text: method, URL and body (exposition or samples). */
  text: string;
  /** The same for --json. */
  json: Record<string, unknown>;
}

/**
 * A destination for records. The recorder (src/recorder/) owns everything around it: the
 * write-ahead outbox, the group lock, the budget's split between kept and new records.
 * A backend delivers one record exactly once within its budget (retries included) or throws a
 * DeployctlError that says why.
 */
export interface Backend {
  readonly target: Target;
  /** Milliseconds left of this backend's budget (--timeout). */
  remainingMs(): number;
  /**
   * Delivers a record. `fix` is called with the record as it must be re-sent byte for byte, when
   * the backend settles what it sends before sending (remote-write's samples, times corrected
   * against the server's clock): the recorder keeps it.
   */
  deliver(
    grouping: Grouping,
    record: GroupRecord,
    fix?: (record: GroupRecord) => Promise<void>,
    options?: DeliverOptions,
  ): Promise<Delivered>;
  /**
   * Delivers several kept records of one group in one write, exactly once each (a backend that
   * merges writes: the Pushgateway), at most `maxRecords` at a time; `fix` as for `deliver`, per
   * record. Optional: without it each record is delivered on its own.
   */
  deliverMany?(
    grouping: Grouping,
    items: readonly { record: GroupRecord; fix?: (record: GroupRecord) => Promise<void> }[],
    options?: DeliverOptions,
  ): Promise<{ duplicates: string[]; attempts: number; notices: string[] }>;
  /** How many records one deliverMany carries at most. */
  readonly maxRecords?: number;
  plan(grouping: Grouping, record: GroupRecord): Promise<Plan>;
  /**
   * Starts what the next delivery to this group will read first (the Pushgateway's group), so that
   * it overlaps the write-ahead of the record. Only under the group's lock, and only when that
   * delivery is the next write to the group; the function it returns drops the read, when
   * another write came first after all. Optional.
   */
  prepare?(grouping: Grouping): () => void;
  /** What a read of the group says of records stored earlier without a read-back (only backends that store so). */
  confirm?(grouping: Grouping, stored: readonly StoredRecord[]): Promise<Record<string, Confirmation>>;
  /**
   * Marks a deployment wrapped by `run` in progress (`startedAt` read from this machine's clock, and
   * checked against the server's like a record's): best effort, never kept for later.
   */
  markInProgress(grouping: Grouping, startedAt: number): Promise<void>;
  close(): void;
}

/** Which groups a reading command looks at: a job, and a service and environment when given. @public */
export interface GroupFilter {
  job: string;
  service: string | undefined;
  environment: string | undefined;
}

/** The latest deployment of one group, as `status` shows it. */
export interface GroupStatus {
  job: string;
  service: string;
  environment: string;
  version: string;
  commit: string;
  status: string;
  /** Unix seconds, or null when the group has no finished deployment yet. */
  finishedAt: number | null;
  durationSeconds: number | null;
  inProgress: boolean;
  /** Unix seconds: when the deployment in progress started, or null. */
  startedAt: number | null;
  deployments: Record<string, number>;
  rollbacks: number;
  /** Failed changes of the group (each once), all time on a Pushgateway, over the status lookback on remote-write. */
  failedChanges: number;
  /**
   * Incidents open now, and since when (Unix seconds): on remote-write the earliest open one's
   * start; on a Pushgateway the group's latest incident change (it keeps no time per incident).
   */
  openIncidents: { count: number; since: number | null };
  /** The group's latest `verify` verdict and when it ended, or null when none is known. */
  latestVerification: { result: string; at: number } | null;
}

/** One instant-vector sample of a query answer. */
export interface LabeledValue {
  labels: Record<string, string>;
  value: number;
}

/** The answers `dora` needs, one instant vector each, by the name of the DORA query that gave it. */
export interface DoraAnswers {
  deploymentsByStatus: LabeledValue[];
  rollbacks: LabeledValue[];
  deploymentFrequencyPerDay: LabeledValue[];
  failedChanges: LabeledValue[];
  failedChangesByReason: LabeledValue[];
  changeFailureRate: LabeledValue[];
  deploymentFailureRate: LabeledValue[];
  leadTimeMean: LabeledValue[];
  failedDeploymentRecoveryMean: LabeledValue[];
  reworkDeployments: LabeledValue[];
  deploymentReworkRate: LabeledValue[];
  timeToRestoreMean: LabeledValue[];
}

/** The queries behind DoraAnswers, in the order the readers ask them. */
export const DORA_ANSWERS = [
  'deploymentsByStatus',
  'rollbacks',
  'deploymentFrequencyPerDay',
  'failedChanges',
  'failedChangesByReason',
  'changeFailureRate',
  'deploymentFailureRate',
  'leadTimeMean',
  'failedDeploymentRecoveryMean',
  'reworkDeployments',
  'deploymentReworkRate',
  'timeToRestoreMean',
] as const satisfies readonly (keyof DoraAnswers)[];

/** One line of `doctor`: a check that passed, failed, or is worth a warning. */
export interface Check {
  ok: boolean;
  what: string;
  fix?: string;
  /** Worth fixing, but not a problem that fails doctor. */
  warning?: boolean;
}

/** What `doctor` reports of a backend: its checks, and how the configuration reaches it. @public */
export interface BackendDoctor {
  checks: Check[];
  /** The backend's URL as `doctor` shows it (credentials redacted). */
  shownUrl: string;
}

/**
 * The reading side of a backend: what `status`, `dora`, `delete` and `doctor` ask of it. Each
 * answers as data; the commands render it.
 */
export interface BackendReader {
  /** The backend's URL as messages show it. */
  readonly shownUrl: string;
  /** The latest deployment of each group that matches, and where they were read. */
  status(filter: GroupFilter): Promise<{ groups: GroupStatus[]; shownUrl: string }>;
  /** The DORA queries of this backend's metric contract over `window`, answered by its query API. */
  dora(filter: GroupFilter, window: string): Promise<{ answers: DoraAnswers; shownUrl: string }>;
  /**
   * The group to retire, checked to exist (a DeployctlError says why not, or why this backend
   * cannot retire groups); the returned function retires it.
   */
  findForDelete(grouping: Grouping): Promise<{ what: string; remove: () => Promise<void> }>;
  /** The request `delete --dry-run` shows. */
  deletePlan(grouping: Grouping): string;
  /** The backend's checks for `doctor`, for the groups of `job`. */
  doctor(job: string): Promise<BackendDoctor>;
  /** What a first record of this group would write, as text, for `doctor`. */
  wouldRecord(grouping: Grouping, labels: Labels, now: number): Promise<string>;
  close(): void;
}

/** Options of a writer opened for a kept record's target rather than this configuration's. @public */
export interface OpenOptions {
  target: Target;
  /** The target is the configured one: its credentials and query API may be used. */
  configured: boolean;
  timeoutSeconds: number;
}

/** What each backend's folder exports (its index.ts): how it is opened to write and to read. */
export interface BackendModule {
  openBackend(destination: Destination, log: Log, options: OpenOptions): Backend;
  /** Loads the reading side only when a reading command asks for it. */
  openReader(destination: Destination, log: Log): Promise<BackendReader>;
}
