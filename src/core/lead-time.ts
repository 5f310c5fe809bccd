/** A commit as `git log --format='%H %ct %P'` gives it. */
export interface CommitNode {
  sha: string;
  parents: string[];
  /** Commit time, Unix seconds. */
  time: number;
  /** The history was cut here (a shallow clone's boundary): its parents are not known. */
  shallow?: boolean;
}

/** What a group knows was deployed to it: a deployed commit, what a deployment brought, or an ancestor of one it remembers. */
export interface KnownCommits {
  has(sha: string): boolean;
  /** Nothing was deployed to the group before. */
  readonly empty: boolean;
}

/** A plain set of commits as KnownCommits. */
export function knownCommits(shas: Iterable<string>): KnownCommits {
  const set = new Set(shas);
  return { has: (sha) => set.has(sha), empty: set.size === 0 };
}

export interface NewCommits {
  /** The commits this deployment brings to the environment for the first time. */
  commits: CommitNode[];
  /** Commits of the history that the group had deployed before (the deployed commit's ancestors among them). */
  alreadyDeployed: Set<string>;
  /** Why the answer fell back to the deployed commit alone, if it did. */
  notice?: string;
}

const short = (sha: string) => sha.slice(0, 12);

/** Every commit reachable from `starts` within the history, `starts` included. */
function reachable(starts: Iterable<string>, bySha: Map<string, CommitNode>): Set<string> {
  const seen = new Set<string>();
  const stack = [...starts];
  while (stack.length > 0) {
    const sha = stack.pop()!;
    if (seen.has(sha)) continue;
    seen.add(sha);
    for (const parent of bySha.get(sha)?.parents ?? []) stack.push(parent);
  }
  return seen;
}

/**
 * The commits a successful deployment brings to the environment for the first time: reachable
 * from the deployed commit and from none of the commits deployed to the group before.
 *
 * `known` holds the commits the group remembers as deployed (every commit a deployment brought,
 * and every deployed commit). Whatever is reachable from a known commit that lies in the history
 * is deployed too, so a merge, a branch deployed before its merge, a rollback and a roll-forward
 * all count each commit once. When the walk from the deployed commit reaches the end of the
 * history (a shallow clone, or the history limit) before every path met a deployed commit, the
 * history is too short to tell: the deployed commit alone, with a notice that says so.
 */
export function newlyDeployedCommits(
  history: readonly CommitNode[],
  deployed: string,
  known: KnownCommits,
): NewCommits {
  const bySha = new Map(history.map((node) => [node.sha, node]));
  const deployedNode = bySha.get(deployed);
  if (!deployedNode)
    return {
      commits: [],
      alreadyDeployed: new Set(),
      notice: `commit ${short(deployed)} is not in the local history: no lead time observed`,
    };
  const knownInHistory = history.filter((node) => known.has(node.sha)).map((node) => node.sha);
  const alreadyDeployed = reachable(knownInHistory, bySha);
  if (alreadyDeployed.has(deployed)) return { commits: [], alreadyDeployed };
  if (known.empty) {
    return {
      commits: [deployedNode],
      alreadyDeployed,
      notice: 'first deployment of this group: lead time of the deployed commit alone',
    };
  }

  const commits: CommitNode[] = [];
  const seen = new Set<string>();
  const stack = [deployed];
  let cut: CommitNode | undefined;
  while (stack.length > 0) {
    const sha = stack.pop()!;
    if (seen.has(sha) || alreadyDeployed.has(sha)) continue;
    seen.add(sha);
    const node = bySha.get(sha)!;
    commits.push(node);
    if (node.shallow || node.parents.some((parent) => !bySha.has(parent))) cut ??= node;
    for (const parent of node.parents) if (bySha.has(parent)) stack.push(parent);
  }
  if (cut) {
    const why = cut.shallow ? 'where this shallow clone was cut' : `the oldest of the ${history.length} commits read`;
    return {
      commits: [deployedNode],
      alreadyDeployed,
      notice:
        `the local history ends at commit ${short(cut.sha)} (${why}) before it reaches a commit deployed to this group: ` +
        'lead time of the deployed commit alone; fetch the whole history (e.g. fetch-depth: 0) to count every commit',
    };
  }
  return { commits, alreadyDeployed };
}

/** What lead time needs of a successful deployment. */
export interface DeployedChange {
  commit: string;
  /** --commit-time: the deployed commit's time, overriding git (Unix seconds). */
  commitTime?: number;
  /** The deployed commit and its ancestors, newest first, bounded. */
  history?: readonly CommitNode[];
  /** Unix seconds. */
  finishedAt: number;
}

/**
 * The lead time, in seconds, of each commit a successful deployment brings for the first time,
 * for both backends: the same commits counted once, the same notices. `deployedBefore` knows the
 * commits the group deployed before (and what those deployments brought).
 */
export function leadTimes(
  change: DeployedChange,
  deployedBefore: KnownCommits,
): { commits: CommitNode[]; seconds: number[]; notice?: string } {
  const { commit, finishedAt } = change;
  const of = (commits: CommitNode[], notice?: string) => ({
    commits,
    seconds: commits.map((c) => Math.max(0, finishedAt - c.time)),
    ...(notice && { notice }),
  });
  if (!commit) return of([]);
  if (change.commitTime !== undefined)
    return of(deployedBefore.has(commit) ? [] : [{ sha: commit, parents: [], time: change.commitTime }]);
  if (!change.history) {
    if (deployedBefore.has(commit)) return of([]);
    return of(
      [],
      `commit ${short(commit)} is not in a local git history and no --commit-time was given: no lead time observed`,
    );
  }
  const { commits, notice } = newlyDeployedCommits(change.history, commit, deployedBefore);
  return of(commits, notice);
}
