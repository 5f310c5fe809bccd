import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { CommitNode } from '../../core/lead-time.js';

/** Whether cwd is inside a git work tree (or GIT_DIR says where one is), without running git. */
export function insideRepository(cwd: string, env: Record<string, string | undefined>): boolean {
  if (env.GIT_DIR) return true;
  for (let dir = cwd; ; dir = dirname(dir)) {
    if (existsSync(join(dir, '.git'))) return true;
    if (dirname(dir) === dir) return false;
  }
}

/** How far back the history for lead time goes; a previous deploy further back counts the deployed commit alone. */
const HISTORY_LIMIT = 2000;

/** The note for a repository that git refuses to read because another user owns it, with the fix. */
function refusedRepositoryNote(stderr: string): string | undefined {
  const match = /detected dubious ownership in repository at '([^']+)'/.exec(stderr);
  if (!match) return undefined;
  return (
    `git refuses the repository at ${match[1]} (it belongs to another user, "dubious ownership"), so the commit, version and lead time do not come from git; ` +
    `fix: git config --global --add safe.directory ${match[1]}`
  );
}

/** The one adapter to git: every call runs `git` in `cwd` and answers undefined when git cannot. */
export class Git {
  private refusalNoted = false;

  /** `onRefused` hears once why git refused the repository, when it was for its ownership. */
  constructor(
    private readonly cwd: string,
    private readonly onRefused?: (note: string) => void,
  ) {}

  private async run(args: string[]): Promise<string | undefined> {
    const { execFile } = await import('node:child_process');
    return new Promise((resolve) => {
      execFile(
        'git',
        args,
        {
          cwd: this.cwd,
          encoding: 'utf8',
          timeout: 10_000,
          maxBuffer: 64 * 1024 * 1024,
          env: { ...process.env, GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' },
        },
        (error, stdout, stderr) => {
          const note = error ? refusedRepositoryNote(String(stderr)) : undefined;
          if (note && !this.refusalNoted) {
            this.refusalNoted = true;
            this.onRefused?.(note);
          }
          resolve(error ? undefined : stdout.trim());
        },
      );
    });
  }

  /** The full SHA of a commit-ish, or undefined when it is not in this repository. */
  resolveCommit(ref: string): Promise<string | undefined> {
    return this.run(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
  }

  async describe(commit: string): Promise<string | undefined> {
    return (await this.run(['describe', '--tags', commit])) || undefined;
  }

  /** The commits where a shallow clone's history was cut (git shows them without parents). */
  private async shallowBoundary(): Promise<Set<string>> {
    const path = await this.run(['rev-parse', '--git-path', 'shallow']);
    if (!path) return new Set();
    const { readFile } = await import('node:fs/promises');
    const { resolve } = await import('node:path');
    const text = await readFile(resolve(this.cwd, path), 'utf8').catch(() => '');
    return new Set(text.split('\n').filter(Boolean));
  }

  /** The commit and its ancestors, newest first, at most HISTORY_LIMIT; a shallow clone's boundary is marked. */
  async history(commit: string): Promise<CommitNode[] | undefined> {
    const [out, boundary] = await Promise.all([
      this.run(['log', `--max-count=${HISTORY_LIMIT}`, '--format=%H %ct %P', commit]),
      this.shallowBoundary(),
    ]);
    if (out === undefined) return undefined;
    return out
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [sha = '', time = '0', ...parents] = line.split(' ');
        return { sha, time: Number(time), parents, ...(boundary.has(sha) && { shallow: true }) };
      });
  }
}
