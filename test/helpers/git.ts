import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';

/** A throwaway git repository whose commits have fixed commit times. */
export class TestRepo {
  constructor(readonly path: string) {
    mkdirSync(path, { recursive: true });
    this.git('init', '-q', '-b', 'main');
  }

  private env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      PATH: process.env.PATH ?? '',
      HOME: this.path,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_AUTHOR_NAME: 'Test',
      GIT_AUTHOR_EMAIL: 'test@example.com',
      GIT_COMMITTER_NAME: 'Test',
      GIT_COMMITTER_EMAIL: 'test@example.com',
      ...extra,
    };
  }

  git(...args: string[]): string {
    return execFileSync('git', args, { cwd: this.path, encoding: 'utf8', env: this.env() }).trim();
  }

  /** Commits at Unix time `time` and returns the commit's SHA. */
  commit(message: string, time: number): string {
    execFileSync('git', ['commit', '-q', '--allow-empty', '-m', message], {
      cwd: this.path,
      env: this.env({ GIT_AUTHOR_DATE: `@${time} +0000`, GIT_COMMITTER_DATE: `@${time} +0000` }),
    });
    return this.git('rev-parse', 'HEAD');
  }
}
