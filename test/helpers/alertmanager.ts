import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startServer } from './pushgateway.js';

export interface RunningAlertmanager {
  url: string;
  port: number;
  /** Posts alerts through API v2 (`POST /api/v2/alerts`), as Prometheus would. */
  post(alerts: { labels: Record<string, string>; startsAt?: string; endsAt?: string }[]): Promise<void>;
  close(): Promise<void>;
}

/** A config that routes everything to a receiver that sends nothing. */
const QUIET_CONFIG = 'route:\n  receiver: nowhere\nreceivers:\n  - name: nowhere\n';

/**
 * Starts a real Debian `prometheus-alertmanager` on a free 127.0.0.1 port, without clustering,
 * with its storage in a temporary directory of its own (removed by close), and waits until it is ready.
 */
export async function startAlertmanager({
  config = QUIET_CONFIG,
}: {
  config?: string;
} = {}): Promise<RunningAlertmanager> {
  const dir = mkdtempSync(join(tmpdir(), 'deployctl-am-'));
  const file = join(dir, 'alertmanager.yml');
  writeFileSync(file, config);
  const port = await freePort();
  const server = await startServer(
    'alertmanager',
    'prometheus-alertmanager',
    [
      `--config.file=${file}`,
      `--storage.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
      '--log.level=warn',
    ],
    port,
    `http://127.0.0.1:${port}/-/ready`,
  ).catch((error: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  return {
    url: server.url,
    port,
    async post(alerts) {
      const response = await fetch(`${server.url}/api/v2/alerts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(alerts.map((a) => ({ annotations: {}, generatorURL: 'http://127.0.0.1/', ...a }))),
      });
      if (!response.ok)
        throw new Error(`Alertmanager refused the alerts: HTTP ${response.status} ${await response.text()}`);
    },
    async close() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
