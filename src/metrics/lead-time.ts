/** A commit as `git log --format='%H %P %ct'` gives it. */
export interface CommitNode {
  sha: string;
  parents: string[];
  /** Commit time, Unix seconds. */
  time: number;
}

export interface NewCommits {
  commits: CommitNode[];
  /** Why the answer fell back to the deployed commit alone, if it did. */
  notice?: string;
}

const short = (sha: string) => sha.slice(0, 12);

function ancestors(start: string, bySha: Map<string, CommitNode>): Set<string> {
  const seen = new Set<string>();
  const stack = [start];
  while (stack.length > 0) {
    const sha = stack.pop()!;
    if (seen.has(sha)) continue;
    seen.add(sha);
    for (const parent of bySha.get(sha)?.parents ?? []) stack.push(parent);
  }
  return seen;
}

/**
 * The commits this deployment brings to the environment for the first time: reachable from the
 * deployed commit but not from the previously deployed one (`git log previous..deployed`), within
 * the history given. Without a previous commit, or when it is not in that history (a shallow
 * clone), the deployed commit alone, with a notice.
 */
export function newlyDeployedCommits(history: readonly CommitNode[], deployed: string, previous: string | undefined): NewCommits {
  const bySha = new Map(history.map((node) => [node.sha, node]));
  const deployedNode = bySha.get(deployed);
  if (!deployedNode) return { commits: [], notice: `commit ${short(deployed)} is not in the local history: no lead time observed` };
  if (!previous) return { commits: [deployedNode], notice: 'first deployment of this group: lead time of the deployed commit alone' };
  if (previous === deployed) return { commits: [] };
  if (!bySha.has(previous)) {
    return {
      commits: [deployedNode],
      notice: `previously deployed commit ${short(previous)} is not in the local history (shallow clone?): lead time of the deployed commit alone`,
    };
  }
  const alreadyDeployed = ancestors(previous, bySha);
  const commits: CommitNode[] = [];
  const seen = new Set<string>();
  const stack = [deployed];
  while (stack.length > 0) {
    const sha = stack.pop()!;
    if (seen.has(sha) || alreadyDeployed.has(sha)) continue;
    seen.add(sha);
    const node = bySha.get(sha);
    if (!node) continue;
    commits.push(node);
    stack.push(...node.parents);
  }
  return { commits };
}
