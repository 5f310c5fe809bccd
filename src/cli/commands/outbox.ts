import { UsageError } from '../../core/errors.js';
import { Outbox, type OutboxEntry } from '../../recorder/outbox.js';
import type { CommandContext } from '../context.js';
import type { OutboxView } from '../render/output.js';
import { confirm } from './delete.js';

export interface OutboxFlags {
  target?: string;
  from?: string;
  to?: string;
  yes?: boolean;
}

const ACTIONS = ['list', 'drop', 'move'] as const;

/** A URL as records are matched by it: no trailing slashes. */
const sameUrl = (a: string, b: string) => a.replace(/\/+$/, '') === b.replace(/\/+$/, '');

/** The corrected URL of `move --to`: http or https, without credentials (those belong in the configuration). */
function checkedUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--to ${JSON.stringify(value)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--to must be an http:// or https:// URL, not ${url.protocol}`);
  }
  if (url.username || url.password) {
    throw new UsageError(
      '--to must not carry credentials: give them in the configuration (a record kept for another URL is sent without them)',
    );
  }
  return value.replace(/\/+$/, '');
}

/** Kept records (retried by flush) and held ones (waiting for a decision), oldest first. */
async function everything(outbox: Outbox): Promise<{ entry: OutboxEntry; held: boolean }[]> {
  const [kept, held] = await Promise.all([
    outbox.list({ leaveInPlace: true }),
    outbox.list({ leaveInPlace: true, held: true }),
  ]);
  return [
    ...kept.entries.map((entry) => ({ entry, held: false })),
    ...held.entries.map((entry) => ({ entry, held: true })),
  ];
}

/**
 * `deployctl outbox list|drop|move`: what the outbox keeps, for which target and why; drop it; or
 * send it to a corrected URL from now on (the next flush delivers it, once).
 */
export async function outboxCommand(
  action: string | undefined,
  flags: OutboxFlags,
  { destination, settings }: CommandContext,
): Promise<OutboxView> {
  if (!ACTIONS.includes(action as never)) {
    throw new UsageError(`deployctl outbox needs one of ${ACTIONS.join(', ')}${action ? `, not ${action}` : ''}`);
  }
  const outbox = new Outbox(destination.stateDir);
  let view: OutboxView;
  if (action === 'list') {
    view = {
      action: 'list',
      items: (await everything(outbox)).map(({ entry, held }) => ({
        target: entry.kept.target,
        service: entry.kept.grouping.service,
        environment: entry.kept.grouping.environment,
        kind: entry.kept.record.kind,
        id: entry.kept.record.id,
        keptAt: entry.kept.keptAt,
        ...(held && { heldFor: entry.kept.held?.reason ?? 'refused for good' }),
      })),
    };
  } else if (action === 'drop') {
    const target = flags.target;
    const chosen = (await everything(outbox)).filter(({ entry }) => !target || sameUrl(entry.kept.target.url, target));
    const what = `${chosen.length} kept record(s)${target ? ` for ${target}` : ''}`;
    if (chosen.length > 0 && !flags.yes && !settings.dryRun) {
      if (!process.stdin.isTTY) throw new UsageError(`not dropping ${what} without --yes (no terminal to ask on)`);
      const answer = await confirm(`Drop ${what}? They will never be delivered. [y/N] `);
      if (answer !== 'yes') {
        return { action: 'drop', dropped: 0, declined: answer, what };
      }
    }
    if (!settings.dryRun) for (const { entry } of chosen) await outbox.remove(entry);
    view = { action: 'drop', dropped: chosen.length, what };
  } else {
    if (!flags.from || !flags.to) throw new UsageError('deployctl outbox move needs --from URL and --to URL');
    const from = flags.from;
    const to = checkedUrl(flags.to);
    const chosen = (await everything(outbox)).filter(({ entry }) => sameUrl(entry.kept.target.url, from));
    if (!settings.dryRun) {
      for (const { entry } of chosen) await outbox.retarget(entry, { backend: entry.kept.target.backend, url: to });
    }
    view = { action: 'move', moved: chosen.length, from, to };
  }
  return view;
}
