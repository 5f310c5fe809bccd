import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OutOfTimeError } from '../../../src/adapters/retry.js';
import type {
  Backend,
  Confirmation,
  Delivered,
  DeliverOptions,
  Destination,
  Plan,
  StoredRecord,
} from '../../../src/backends/backend.js';
import { GatewayError } from '../../../src/core/errors.js';
import type { Log } from '../../../src/core/log.js';
import type { DeploymentRecord, Grouping, GroupRecord, Target } from '../../../src/core/record.js';
import type { RecorderContext } from '../../../src/recorder/context.js';
import { Outbox, type OutboxEntry } from '../../../src/recorder/outbox.js';

/** What one record does when delivered: how long it takes on the fake clock, a failure, a wait. */
interface Behaviour {
  costMs?: number;
  fail?: Error;
  /** The delivery waits for this before it goes on. */
  gate?: Promise<void>;
}

/** One delivery asked of a fake backend, in the order asked. */
interface Attempt {
  id: string;
  target: Target;
  options: DeliverOptions;
  /** The budget of the backend it was asked of, in ms. */
  budgetMs: number;
}

/**
 * In-memory backends sharing one fake clock (ms): each delivery moves it on by its cost, and a
 * backend's budget runs out as a real one's would. Records what was asked of them, in order.
 */
class FakeBackends {
  clockMs = 0;
  /** What a delivery costs when its record has no behaviour of its own. */
  costMs = 10;
  /** Every delivery fails as a backend out of reach does (retryable, no status). */
  unreachable = false;
  /** Deliveries without a read-back are stored unconfirmed and numbered (the Pushgateway at scale). */
  storesUnconfirmed = false;
  private sequence = 0;
  readonly behaviours = new Map<string, Behaviour>();
  /** What a read of a group says of records stored without a read-back, by id; 'held' otherwise. */
  readonly verdicts = new Map<string, Confirmation>();
  readonly opened: FakeBackend[] = [];
  readonly attempts: Attempt[] = [];
  /** Ids of the records delivered, in order. */
  readonly delivered: string[] = [];
  readonly confirmed: { target: Target; stored: readonly StoredRecord[] }[] = [];
  /** Called with each backend as it opens. */
  onOpen: ((backend: FakeBackend) => void) | undefined;

  /** Opens as the registry does: the destination's target unless told, the budget narrowed, never widened. */
  readonly open = async (
    destination: Destination,
    _log: Log,
    {
      target = destination.target,
      timeoutSeconds = destination.timeoutSeconds,
    }: { target?: Target; timeoutSeconds?: number } = {},
  ): Promise<Backend> => {
    const backend = new FakeBackend(this, target, Math.min(timeoutSeconds, destination.timeoutSeconds) * 1000);
    this.opened.push(backend);
    this.onOpen?.(backend);
    return backend;
  };

  verdict(id: string): Confirmation {
    return this.verdicts.get(id) ?? 'held';
  }

  nextSequence(): number {
    this.sequence += 1;
    return this.sequence;
  }
}

class FakeBackend implements Backend {
  private readonly deadline: number;
  /** Each early read started, and whether it was dropped. */
  readonly prepared: { grouping: Grouping; dropped: boolean }[] = [];
  closed = false;
  onClose: (() => void) | undefined;

  constructor(
    private readonly world: FakeBackends,
    readonly target: Target,
    readonly budgetMs: number,
  ) {
    this.deadline = world.clockMs + budgetMs;
  }

  remainingMs(): number {
    return this.deadline - this.world.clockMs;
  }

  async deliver(
    _grouping: Grouping,
    record: GroupRecord,
    _fix?: (record: GroupRecord) => Promise<void>,
    options: DeliverOptions = {},
  ): Promise<Delivered> {
    const { world } = this;
    world.attempts.push({ id: record.id, target: this.target, options, budgetMs: this.budgetMs });
    if (this.remainingMs() <= 0) throw new OutOfTimeError(`deliver ${record.id}`);
    const behaviour = world.behaviours.get(record.id) ?? {};
    await behaviour.gate;
    const cost = behaviour.costMs ?? world.costMs;
    if (cost > this.remainingMs()) {
      world.clockMs = this.deadline;
      throw new GatewayError(`timed out delivering ${record.id}`, undefined, true);
    }
    world.clockMs += cost;
    if (world.unreachable) throw new GatewayError('connect ECONNREFUSED', undefined, true);
    if (behaviour.fail) throw behaviour.fail;
    world.delivered.push(record.id);
    const stored = options.readBack === false && world.storesUnconfirmed;
    return {
      duplicate: false,
      notices: [],
      attempts: 1,
      ...(stored && { unconfirmed: true, sequence: world.nextSequence() }),
      ...(options.confirm && {
        confirmed: Object.fromEntries(options.confirm.map(({ id }) => [id, world.verdict(id)])),
      }),
    };
  }

  async plan(grouping: Grouping, record: GroupRecord): Promise<Plan> {
    const url = `${this.target.url}/metrics/job/${grouping.job}`;
    return { url, text: `POST ${url}\n\n${record.id}\n`, json: { url } };
  }

  prepare(grouping: Grouping): () => void {
    const read = { grouping, dropped: false };
    this.prepared.push(read);
    return () => {
      read.dropped = true;
    };
  }

  async confirm(_grouping: Grouping, stored: readonly StoredRecord[]): Promise<Record<string, Confirmation>> {
    this.world.confirmed.push({ target: this.target, stored });
    return Object.fromEntries(stored.map(({ id }) => [id, this.world.verdict(id)]));
  }

  async markInProgress(): Promise<void> {}

  close(): void {
    this.closed = true;
    this.onClose?.();
  }
}

/** A promise and the functions that settle it, for a test to decide when something happens. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const NOW = 1_767_225_600;
export const GATEWAY: Target = { backend: 'pushgateway', url: 'http://gateway.test:9091' };
export const api: Grouping = { job: 'deployments', service: 'api', environment: 'production' };
export const web: Grouping = { job: 'deployments', service: 'web', environment: 'production' };

export function deployment(id: string, finishedAt = NOW): DeploymentRecord {
  return { kind: 'deployment', id, status: 'success', finishedAt, version: '1.0.0', commit: 'abc123', labels: {} };
}

/** A real state directory (outbox and lock) in a temporary folder, fake backends, a log that collects. */
export function setup({ timeoutSeconds = 2, dryRun = false } = {}) {
  const stateDir = mkdtempSync(join(tmpdir(), 'deployctl-recorder-'));
  const backends = new FakeBackends();
  const log = { warnings: [] as string[], debug: [] as string[] };
  const context: RecorderContext = {
    destination: {
      target: GATEWAY,
      url: GATEWAY.url,
      prometheus: undefined,
      auth: {},
      tls: {},
      stateDir,
      timeoutSeconds,
    },
    log: { warn: (m) => log.warnings.push(m), debug: (m) => log.debug.push(m) },
    now: () => NOW,
    dryRun,
    openBackend: backends.open,
  };
  const outbox = new Outbox(stateDir);
  return {
    stateDir,
    backends,
    log,
    context,
    outbox,
    /** Keeps a record as an earlier run would have, `ageSeconds` ago. */
    keep: (grouping: Grouping, id: string, { ageSeconds = 60, target = GATEWAY } = {}): Promise<OutboxEntry> =>
      outbox.keep(target, grouping, deployment(id, NOW - ageSeconds), NOW - ageSeconds),
    /** The ids of the records in the outbox (or in outbox/sent/), oldest first. */
    kept: (where: 'outbox' | 'sent' = 'outbox'): string[] => {
      const dir = where === 'sent' ? outbox.sentDir : outbox.dir;
      try {
        return readdirSync(dir)
          .filter((name) => name.endsWith('.json'))
          .sort()
          .map((name) =>
            name
              .replace(/(\.s\d+)?\.json$/, '')
              .split('-')
              .slice(3)
              .join('-'),
          );
      } catch {
        return [];
      }
    },
    cleanUp: () => rmSync(stateDir, { recursive: true, force: true }),
  };
}
