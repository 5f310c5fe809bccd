import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { freePort, type RunningServer, startServer } from './pushgateway.js';

/** One webhook notification as Alertmanager posts it: the raw body, and parsed. */
export interface CapturedWebhook {
  path: string;
  body: string;
  payload: {
    version: string;
    status: 'firing' | 'resolved';
    groupKey: string;
    alerts: {
      status: 'firing' | 'resolved';
      labels: Record<string, string>;
      startsAt: string;
      endsAt: string;
      fingerprint: string;
    }[];
  };
}

/** A webhook receiver on 127.0.0.1 that keeps every body Alertmanager posts, as it came. */
export function startCapturingReceiver(): Promise<{
  url: string;
  received: CapturedWebhook[];
  close(): Promise<void>;
}> {
  const received: CapturedWebhook[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      received.push({ path: request.url ?? '', body, payload: JSON.parse(body) as CapturedWebhook['payload'] });
      response.end('ok');
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        received,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}

/**
 * Starts a real Debian `prometheus-alertmanager` on a free 127.0.0.1 port, with `config` (YAML
 * text) and its storage in `dir`, no cluster; resolves once it answers /-/ready.
 */
export async function startAlertmanager({ dir, config }: { dir: string; config: string }): Promise<RunningServer> {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'alertmanager.yml');
  writeFileSync(file, config);
  const port = await freePort();
  return startServer(
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
  );
}

/** An alert as API v2 takes it. */
export interface PostableAlert {
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  /** Default: when Alertmanager receives it. */
  startsAt?: string;
  endsAt?: string;
  generatorURL?: string;
}

/** POST /api/v2/alerts, as Prometheus does. */
export async function postAlerts(alertmanagerUrl: string, alerts: PostableAlert[]): Promise<void> {
  const response = await fetch(`${alertmanagerUrl}/api/v2/alerts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(alerts),
  });
  if (!response.ok) throw new Error(`Alertmanager refused the alerts: ${response.status} ${await response.text()}`);
}

/** GET /api/v2/alerts: the fingerprint Alertmanager gave each alert, by the value of `label`. */
export async function fingerprints(alertmanagerUrl: string, label: string): Promise<Record<string, string>> {
  const response = await fetch(`${alertmanagerUrl}/api/v2/alerts`);
  const alerts = (await response.json()) as { labels: Record<string, string>; fingerprint: string }[];
  return Object.fromEntries(alerts.map((a) => [a.labels[label] ?? '', a.fingerprint]));
}
