import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { BIN } from './cli.js';

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * A tmux server of this test file's own (its own socket), so that only its sessions are touched:
 * killed after the file's tests, and its socket file (which tmux leaves behind) removed.
 */
export function useTmux(): (...args: string[]) => string {
  const socket = `deployctl-test-${randomUUID().slice(0, 8)}`;
  const tmux = (...args: string[]) =>
    execFileSync('tmux', ['-u', '-L', socket, '-f', '/dev/null', ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  afterAll(() => {
    try {
      tmux('kill-server');
    } catch {
      // no session left: the server is gone already
    }
    rmSync(join(process.env.TMUX_TMPDIR ?? '/tmp', `tmux-${process.getuid?.() ?? 0}`, socket), { force: true });
  });
  return tmux;
}

/**
 * The shell line a terminal test runs in its pane: deployctl with only `vars` in its environment,
 * then its exit code as "[exit N]", then a pause that keeps the pane open to be read.
 */
export function deployctlLine(vars: Record<string, string>, args: string[]): string {
  const env = Object.entries(vars).map(([k, v]) => quote(`${k}=${v}`));
  return `env -i ${env.join(' ')} ${[process.execPath, BIN, ...args].map(quote).join(' ')}; echo "[exit $?]"; sleep 30`;
}
