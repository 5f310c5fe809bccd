import { describe, expect, it } from 'vitest';
import { type CommitNode, knownCommits, newlyDeployedCommits } from '../../src/core/lead-time.js';

const node = (sha: string, time: number, ...parents: string[]): CommitNode => ({ sha, time, parents });

// a ← b ← c ← m (merge of c and f) ; a ← f (a feature branch, older than b and c)
const history = [node('m', 50, 'c', 'f'), node('c', 40, 'b'), node('b', 30, 'a'), node('f', 20, 'a'), node('a', 10)];
const shas = (result: { commits: CommitNode[] }) => result.commits.map((c) => c.sha).sort();
const known = (...list: string[]) => knownCommits(list);

describe('newlyDeployedCommits', () => {
  it('is the deployed commit alone on the first deployment, with a notice', () => {
    const result = newlyDeployedCommits(history, 'm', known());
    expect(shas(result)).toEqual(['m']);
    expect(result.notice).toMatch(/first deployment/);
  });

  it('counts everything reachable from the deployed commit and from no deployed one', () => {
    expect(shas(newlyDeployedCommits(history, 'm', known('b')))).toEqual(['c', 'f', 'm']);
    expect(shas(newlyDeployedCommits(history, 'c', known('a')))).toEqual(['b', 'c']);
  });

  it('counts a branch deployed before its merge once', () => {
    // f deployed after b: the merge brings c and m only.
    expect(shas(newlyDeployedCommits(history, 'm', known('b', 'f')))).toEqual(['c', 'm']);
  });

  it('counts nothing for a redeploy or a rollback', () => {
    expect(shas(newlyDeployedCommits(history, 'm', known('m')))).toEqual([]);
    expect(shas(newlyDeployedCommits(history, 'b', known('m')))).toEqual([]);
  });

  it('counts only never-deployed commits on a roll-forward', () => {
    // b and c were deployed, then a rollback to a; m brings f and m.
    expect(shas(newlyDeployedCommits(history, 'm', known('a', 'b', 'c')))).toEqual(['f', 'm']);
  });

  it('knows a commit brought by a deployment that is not an ancestor of this one', () => {
    // f brought a too (known as deployed); deploying c counts b and c, never a.
    const branchFirst = [node('c', 40, 'b'), node('b', 30, 'a'), node('a', 10)];
    expect(shas(newlyDeployedCommits(branchFirst, 'c', known('f', 'a')))).toEqual(['b', 'c']);
  });

  it('falls back to the deployed commit alone, saying why, when the history ends before a deployed commit', () => {
    const shallow = [{ ...node('m', 50), shallow: true }];
    const result = newlyDeployedCommits(shallow, 'm', known('b'));
    expect(shas(result)).toEqual(['m']);
    expect(result.notice).toMatch(
      /the local history ends at commit m \(where this shallow clone was cut\) before it reaches a commit deployed to this group/,
    );
    const cut = [node('m', 50, 'c'), node('c', 40, 'b')]; // b's node is beyond the history limit
    const limited = newlyDeployedCommits(cut, 'm', known('zz'));
    expect(shas(limited)).toEqual(['m']);
    expect(limited.notice).toMatch(/ends at commit c \(the oldest of the 2 commits read\)/);
  });

  it('needs no more history than reaches a deployed commit on every path', () => {
    const cut = [node('m', 50, 'c', 'f'), node('c', 40, 'b'), node('f', 20, 'b'), node('b', 30, 'a')];
    const result = newlyDeployedCommits(cut, 'm', known('b'));
    expect(shas(result)).toEqual(['c', 'f', 'm']);
    expect(result.notice).toBeUndefined();
  });
});
