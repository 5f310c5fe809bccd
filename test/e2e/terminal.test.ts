import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import stringWidth from 'string-width';
import { describe, expect, it } from 'vitest';
import { deployctl } from '../helpers/cli.js';
import { startProxy } from '../helpers/proxy.js';
import { useGatewayAndWorkdir } from '../helpers/pushgateway.js';
import { deployctlLine, useTmux } from '../helpers/tmux.js';

const context = useGatewayAndWorkdir();

const tmux = useTmux();

/**
 * Runs deployctl on a real terminal (a detached tmux pane of `width` columns) and returns the
 * screen, with escape sequences when `escapes`. The shell line ends by printing the exit code.
 */
async function onTerminal(
  args: string[],
  {
    env = {},
    width = 200,
    escapes = false,
    keys,
  }: { env?: Record<string, string>; width?: number; escapes?: boolean; keys?: { after: string; send: string } } = {},
): Promise<string> {
  const session = `s${randomUUID().slice(0, 8)}`;
  const vars = {
    PATH: process.env.PATH ?? '',
    HOME: context.workdir.path,
    TERM: 'xterm-256color',
    LANG: 'C.UTF-8',
    DEPLOYCTL_PUSHGATEWAY_URL: context.gateway.url,
    ...env,
  };
  tmux('new-session', '-d', '-s', session, '-x', String(width), '-y', '40', deployctlLine(vars, args));
  try {
    const capture = () => tmux('capture-pane', '-p', ...(escapes ? ['-e'] : []), '-t', session);
    const until = Date.now() + 15_000;
    let keysSent = false;
    for (;;) {
      const screen = capture();
      if (keys && !keysSent && screen.includes(keys.after)) {
        tmux('send-keys', '-t', session, keys.send);
        keysSent = true;
      }
      if (/\[exit \d+\]/.test(screen)) return screen.replace(/\n+$/, '\n');
      if (Date.now() > until) throw new Error(`deployctl did not finish on the terminal:\n${screen}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    tmux('kill-session', '-t', session);
  }
}

const ESC = '\u001b[';

describe('on a terminal', () => {
  it('says what it waits for when a wait lasts more than a second, and stays quiet in a pipe', async () => {
    const proxy = await startProxy(context.gateway.url, () => 'hang');
    try {
      const env = { DEPLOYCTL_PUSHGATEWAY_URL: proxy.url, DEPLOYCTL_STATE_DIR: join(context.workdir.path, 'waits') };
      // A budget of 2.4 s shows as "2s more" whether the wait begins at once or up to 0.9 s into it.
      const screen = await onTerminal(
        ['record', '-s', 'slow', '-e', 'prod', '--status', 'success', '--timeout', '2.4'],
        {
          env,
        },
      );
      expect(screen).toContain(
        `deployctl: waiting for the gateway at ${proxy.url}/ (retrying for up to 2s more, --timeout)…`,
      );
      expect(screen).toContain('[exit 0]');
      const piped = await deployctl(['record', '-s', 'slow', '-e', 'prod', '--status', 'success', '--timeout', '2'], {
        env,
        cwd: context.workdir.path,
      });
      expect(piped.stderr).not.toContain('waiting for');
      expect(piped.stderr).toContain('is not on the gateway yet');
    } finally {
      await proxy.close();
    }
  });

  it('dims the table header, and prints no color at all under NO_COLOR', async () => {
    const env = { DEPLOYCTL_PUSHGATEWAY_URL: context.gateway.url };
    await deployctl(['record', '-s', 'colors', '-e', 'prod', '--status', 'success'], {
      env,
      cwd: context.workdir.path,
    });
    const colored = await onTerminal(['status', '-s', 'colors'], { escapes: true });
    expect(colored).toContain(`${ESC}2mSERVICE`);
    const plain = await onTerminal(['status', '-s', 'colors'], { escapes: true, env: { NO_COLOR: '1' } });
    expect(plain).not.toContain(ESC);
    expect(plain.split('\n')[0]).toMatch(/^SERVICE {2}ENVIRONMENT/);
    const forced = await onTerminal(['status', '-s', 'colors'], {
      escapes: true,
      env: { NO_COLOR: '1', FORCE_COLOR: '1' },
    });
    expect(forced).toContain(`${ESC}2mSERVICE`);
  });

  it('aligns CJK service and environment names, and fits the table into a narrow terminal', async () => {
    const env = { DEPLOYCTL_PUSHGATEWAY_URL: context.gateway.url };
    const services = ['支付服务', 'カート/api', 'plain'];
    for (const service of services) {
      await deployctl(
        [
          'record',
          '-s',
          service,
          '-e',
          '本番環境',
          '--status',
          'success',
          '--version',
          'v1.2.3-with-a-rather-long-build-suffix+20260101',
        ],
        { env, cwd: context.workdir.path },
      );
    }
    const wide = (await onTerminal(['status', '-e', '本番環境'], { width: 200 })).split('\n');
    const rows = wide.slice(0, 4);
    expect(rows[0]).toMatch(/^SERVICE/);
    // Every column starts at the same terminal column on every line: ENVIRONMENT, then VERSION.
    for (const header of ['ENVIRONMENT', 'VERSION', 'STATUS']) {
      const column = stringWidth(rows[0]!.slice(0, rows[0]!.indexOf(header)));
      const starts = rows.slice(1).map((row) => {
        const cell = header === 'ENVIRONMENT' ? '本番環境' : header === 'VERSION' ? 'v1.2.3' : 'success';
        return stringWidth(row.slice(0, row.indexOf(cell)));
      });
      expect(starts, header).toEqual([column, column, column]);
    }

    const narrow = (await onTerminal(['status', '-e', '本番環境'], { width: 70 })).split('\n');
    const table = narrow.slice(
      0,
      narrow.findIndex((l) => l.startsWith('[exit')),
    );
    expect(table, narrow.join('\n')).toHaveLength(4); // header and three rows: nothing wrapped
    for (const row of table) expect(stringWidth(row)).toBeLessThanOrEqual(70);
    expect(table.slice(1).every((row) => row.includes('…'))).toBe(true);
    expect(narrow.find((l) => l.startsWith('[exit'))).toBe('[exit 0]');
  });

  it('leaves the delete prompt cleanly on Ctrl-C: nothing deleted, exit 130', async () => {
    const env = { DEPLOYCTL_PUSHGATEWAY_URL: context.gateway.url };
    await deployctl(['record', '-s', 'ctrl-c', '-e', 'prod', '--status', 'success'], {
      env,
      cwd: context.workdir.path,
    });
    const screen = await onTerminal(['delete', '-s', 'ctrl-c', '-e', 'prod'], {
      keys: { after: '[y/N]', send: 'C-c' },
    });
    expect(screen).toContain(
      `Delete the group of ctrl-c in prod (job deployctl) on ${context.gateway.url}/? Its counters start again from zero. [y/N]\nnothing deleted\n[exit 130]\n`,
    );
    expect(screen).not.toContain('unexpected error');
    const status = await deployctl(['status', '-s', 'ctrl-c'], { env, cwd: context.workdir.path });
    expect(status.stdout).toContain('ctrl-c');
  });
});
