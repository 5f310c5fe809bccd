import { describe, expect, it } from 'vitest';
import { newlyDeployedCommits, type CommitNode } from '../../src/metrics/lead-time.js';

const node = (sha: string, time: number, ...parents: string[]): CommitNode => ({ sha, time, parents });

// a ← b ← c ← m (merge of c and f) ; a ← f (a feature branch, older than b and c)
const history = [node('m', 50, 'c', 'f'), node('c', 40, 'b'), node('b', 30, 'a'), node('f', 20, 'a'), node('a', 10)];
const shas = (result: { commits: CommitNode[] }) => result.commits.map((c) => c.sha).sort();

describe('newlyDeployedCommits', () => {
  it('is the deployed commit alone on the first deployment, with a notice', () => {
    const result = newlyDeployedCommits(history, 'm', undefined);
    expect(shas(result)).toEqual(['m']);
    expect(result.notice).toMatch(/first deployment/);
  });

  it('counts everything reachable from the deployed commit but not from the previous one', () => {
    expect(shas(newlyDeployedCommits(history, 'm', 'b'))).toEqual(['c', 'f', 'm']);
    expect(shas(newlyDeployedCommits(history, 'c', 'a'))).toEqual(['b', 'c']);
  });

  it('counts nothing for a redeploy or a rollback', () => {
    expect(shas(newlyDeployedCommits(history, 'm', 'm'))).toEqual([]);
    expect(shas(newlyDeployedCommits(history, 'b', 'm'))).toEqual([]);
  });

  it('falls back to the deployed commit alone when the previous one is not in the history', () => {
    const shallow = [node('m', 50)];
    const result = newlyDeployedCommits(shallow, 'm', 'b');
    expect(shas(result)).toEqual(['m']);
    expect(result.notice).toMatch(/previously deployed commit b is not in the local history \(shallow clone\?\)/);
  });
});
