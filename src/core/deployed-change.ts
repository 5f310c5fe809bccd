import { type CommitNode, type DeployedChange, type KnownCommits, leadTimes } from './lead-time.js';

/**
 * How many of a deployed commit's ancestors (itself first, newest first) a group remembers with
 * it: enough to tell a rollback to any recent commit from the group's first deployment on.
 */
const REMEMBERED_ANCESTORS = 100;

/** What a group remembers of its commits, however a backend keeps it. */
export interface CommitMemory extends KnownCommits {
  /** The commit of the group's latest successful deployment: the one it runs. */
  readonly running: string | undefined;
  /** `sha` is the running commit or one of the running commit's ancestors the group remembers. */
  runs(sha: string): boolean;
}

/** What a successful deployment changes: a rollback, or the commits it brings for the first time and their lead times. */
export interface SuccessfulChange {
  rollback: boolean;
  commits: CommitNode[];
  /** Lead time of each commit brought, in seconds. */
  seconds: number[];
  notices: string[];
}

const short = (sha: string) => sha.slice(0, 12);

/**
 * A successful deployment against what the group remembers, the same on every backend: a
 * deployment of a proper ancestor of the running commit is a rollback and brings nothing; any
 * other brings each commit never deployed before, once. A success that is not the group's latest
 * (it finished before the one the group runs, sent late) rolls nothing back.
 */
export function successfulChange(
  change: DeployedChange,
  memory: CommitMemory,
  { latest = true }: { latest?: boolean } = {},
): SuccessfulChange {
  const { commit } = change;
  const running = memory.running;
  if (latest && commit !== '' && running !== undefined && commit !== running && memory.runs(commit)) {
    return {
      rollback: true,
      commits: [],
      seconds: [],
      notices: [
        `rollback: commit ${short(commit)} is an ancestor of ${short(running)}, which the group ran; it brings no lead time`,
      ],
    };
  }
  const lead = leadTimes(change, memory);
  return { rollback: false, commits: lead.commits, seconds: lead.seconds, notices: lead.notice ? [lead.notice] : [] };
}

/** The deployed commit and its recent ancestors, newest first, as the group remembers them with it. */
export function rememberedAncestors(change: Pick<DeployedChange, 'commit' | 'history'>): string[] {
  if (!change.commit) return [];
  const fromHistory = change.history?.slice(0, REMEMBERED_ANCESTORS).map((node) => node.sha) ?? [];
  return fromHistory[0] === change.commit ? fromHistory : [change.commit];
}
