import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';

/** A commit graph: each commit's parents and commit time (Unix seconds), parents before children. */
export type Graph = Map<string, { parents: string[]; time: number }>;

/** A graph and its tags, as test/fixtures/*-releases.txt hold them ('index time parent…', 'tag NAME index'). */
export function readGraphFixture(file: URL): { graph: Graph; tags: [string, string][] } {
  const graph: Graph = new Map();
  const tags: [string, string][] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const [first, ...rest] = line.trim().split(' ');
    if (first === 'tag') tags.push([rest[0]!, rest[1]!]);
    else graph.set(first!, { time: Number(rest[0]), parents: rest.slice(1) });
  }
  return { graph, tags };
}

/** Every ancestor of `commit`, itself included. */
function ancestry(graph: Graph, commit: string): Set<string> {
  const seen = new Set<string>();
  const stack = [commit];
  while (stack.length > 0) {
    const next = stack.pop()!;
    if (seen.has(next)) continue;
    seen.add(next);
    stack.push(...graph.get(next)!.parents);
  }
  return seen;
}

export interface Deploy {
  commit: string;
  status: 'success' | 'failure';
}

/**
 * The oracle, from the definitions alone (SPEC, Definitions): a success of a proper ancestor of the
 * running commit is a rollback; any other success brings the commits reachable from it and from no
 * commit deployed successfully before, each once (the group's first: the deployed commit alone).
 * Lead times are finish time − commit time; `at(i)` is the finish time of deploy i.
 */
export function expectedChanges(
  graph: Graph,
  deploys: readonly Deploy[],
  at: (i: number) => number,
): { leadTimes: number[]; rollbacks: number } {
  const leadTimes: number[] = [];
  let rollbacks = 0;
  let running: string | undefined;
  const deployed = new Set<string>();
  for (const [i, d] of deploys.entries()) {
    if (d.status !== 'success') continue;
    const reached = ancestry(graph, d.commit);
    if (running !== undefined && d.commit !== running && ancestry(graph, running).has(d.commit)) rollbacks += 1;
    else if (running === undefined) leadTimes.push(at(i) - graph.get(d.commit)!.time);
    else for (const c of reached) if (!deployed.has(c)) leadTimes.push(at(i) - graph.get(c)!.time);
    for (const c of reached) deployed.add(c);
    running = d.commit;
  }
  return { leadTimes: leadTimes.sort((a, b) => a - b), rollbacks };
}

/**
 * A git repository with exactly this graph (empty commits at the given times, merges included),
 * built with one `git fast-import`; returns each commit's SHA by its name in the graph.
 */
export function buildRepository(path: string, graph: Graph): Map<string, string> {
  mkdirSync(path, { recursive: true });
  const env = { PATH: process.env.PATH ?? '', HOME: path, GIT_CONFIG_NOSYSTEM: '1' };
  const git = (args: string[], input?: string) =>
    execFileSync('git', args, { cwd: path, env, encoding: 'utf8', ...(input !== undefined && { input }) });
  git(['init', '-q', '-b', 'main']);
  const marks = new Map<string, number>();
  const stream: string[] = [];
  for (const [name, { parents, time }] of graph) {
    marks.set(name, marks.size + 1);
    if (parents.length === 0) stream.push('reset refs/heads/main');
    stream.push(
      'commit refs/heads/main',
      `mark :${marks.get(name)}`,
      `committer Test <test@example.com> ${time} +0000`,
      `data ${Buffer.byteLength(name)}`,
      name,
      ...parents.map((p, i) => `${i === 0 ? 'from' : 'merge'} :${marks.get(p)}`),
      '',
    );
  }
  git(['fast-import', '--quiet', `--export-marks=${path}/.git/marks`], `${stream.join('\n')}\n`);
  const byMark = new Map(
    readFileSync(`${path}/.git/marks`, 'utf8')
      .trim()
      .split('\n')
      .map((line) => line.split(' ') as [string, string]),
  );
  git(['checkout', '-q', 'main']);
  return new Map([...marks].map(([name, mark]) => [name, byMark.get(`:${mark}`)!]));
}
