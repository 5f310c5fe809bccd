import type { Reporter } from '../cli/output.js';
import type { Settings } from '../cli/settings.js';
import type { Grouping, GroupRecord, Target } from '../core/record.js';

/** What a backend says about one record it has delivered: data for the report, nothing printed. */
export interface Delivered {
  /** The backend had this record already (an earlier attempt or process stored it): nothing was counted again. */
  duplicate: boolean;
  /** Things worth one line to the user (lead time fell back to the deployed commit alone, …). */
  notices: string[];
  durationSeconds?: number;
  leadTimes?: number[];
  timeToRestore?: number;
  /** Deployments by status after this record, where the backend knows them. */
  totals?: Record<string, number>;
  attempts: number;
  /** Stored without a read-back: a later read of the group must show it (see DeliverOptions.confirm). */
  unconfirmed?: boolean;
  /** The group's sequence number given to this record, where the backend numbers them. */
  sequence?: number;
  /** What this delivery's read said of each record asked about in `confirm`, by id. */
  confirmed?: Record<string, 'held' | 'replaced' | 'unknown'>;
}

export interface DeliverOptions {
  /** Check right after the write that the record is there (default); without it the delivery may be unconfirmed. */
  readBack?: boolean;
  /** Unconfirmed records of the same group (id and sequence), to be looked for in the read this delivery makes anyway. */
  confirm?: readonly { id: string; sequence: number }[];
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
 * A destination for records. The recorder (src/send.ts) owns everything around it: the
 * write-ahead outbox, the group lock, the budget's split between kept and new records, the report.
 * A backend delivers one record exactly once within its budget (retries included) or throws a
 * DeployctlError that says why.
 */
export interface Backend {
  readonly target: Target;
  /** Milliseconds left of this backend's budget (--timeout). */
  remainingMs(): number;
  /**
   * Delivers a record. `fix` is called with the record as it must be re-sent byte for byte, when
   * the backend settles what it sends before sending (remote-write's samples): the recorder keeps it.
   */
  deliver(
    grouping: Grouping,
    record: GroupRecord,
    fix?: (record: GroupRecord) => Promise<void>,
    options?: DeliverOptions,
  ): Promise<Delivered>;
  plan(grouping: Grouping, record: GroupRecord): Promise<Plan>;
  /**
   * Starts what the next delivery to this group will read first (the Pushgateway's group), so that
   * it overlaps the write-ahead of the record. Only under the group's lock, and only when that
   * delivery is the next write to the group; the function it returns drops the read, when
   * another write came first after all. Optional.
   */
  prepare?(grouping: Grouping): () => void;
  /** What a read of the group says of records stored earlier without a read-back (only backends that store so). */
  confirm?(
    grouping: Grouping,
    stored: readonly { id: string; sequence: number }[],
  ): Promise<Record<string, 'held' | 'replaced' | 'unknown'>>;
  /** Marks a deployment wrapped by `run` in progress: best effort, never kept for later. */
  markInProgress(grouping: Grouping, startedAt: number): Promise<void>;
  close(): void;
}

/** How a backend is opened: for this configuration, or for a kept record's target (then without credentials unless it is the configured one). */
export type OpenBackend = (
  settings: Settings,
  reporter: Reporter,
  options: { target: Target; configured: boolean; timeoutSeconds: number },
) => Backend;
