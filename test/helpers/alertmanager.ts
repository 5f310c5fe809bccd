import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postAlerts, startAlertmanager as startAlertmanagerIn } from './alertmanager-server.js';

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
  const server = await startAlertmanagerIn({ dir, config }).catch((error: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  return {
    url: server.url,
    port: server.port,
    async post(alerts) {
      await postAlerts(
        server.url,
        alerts.map((a) => ({ annotations: {}, generatorURL: 'http://127.0.0.1/', ...a })),
      );
    },
    async close() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
