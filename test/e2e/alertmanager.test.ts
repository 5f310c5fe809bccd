import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { deployctl } from '../helpers/cli.js';
import { type RunningPrometheus, startPrometheus } from '../helpers/prometheus.js';
import { freePort, type RunningServer, startPushgateway, startServer, tempDir } from '../helpers/pushgateway.js';

const examples = fileURLToPath(new URL('../../examples/', import.meta.url));
const exampleConfig = join(examples, 'alertmanager/alertmanager.yml');

interface Notification {
  path: string;
  receiver: string;
  status: 'firing' | 'resolved';
  groupLabels: Record<string, string>;
  alerts: { status: string; labels: Record<string, string>; annotations: Record<string, string> }[];
}

/** A chat bridge stand-in on 127.0.0.1: it keeps every webhook notification Alertmanager posts. */
function startWebhookReceiver(): Promise<{ url: string; received: Notification[]; close(): Promise<void> }> {
  const received: Notification[] = [];
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      received.push({ path: request.url ?? '', ...(JSON.parse(body) as Omit<Notification, 'path'>) });
      response.end('ok');
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ url: `http://127.0.0.1:${port}`, received, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}

/**
 * The example config with the receivers pointed at the local webhook receiver (same paths) and
 * short group intervals, so that a test sees notifications in seconds rather than minutes.
 */
function testConfig(receiverUrl: string): string {
  const config = parse(readFileSync(exampleConfig, 'utf8'));
  Object.assign(config.route, { group_wait: '1s', group_interval: '1s', repeat_interval: '1h' });
  for (const receiver of config.receivers) {
    for (const webhook of receiver.webhook_configs ?? [])
      webhook.url = `${receiverUrl}${new URL(webhook.url).pathname}`;
  }
  return stringify(config);
}

async function startAlertmanager(dir: string, configText: string): Promise<RunningServer> {
  const config = join(dir, 'alertmanager.yml');
  writeFileSync(config, configText);
  const port = await freePort();
  return startServer(
    'alertmanager',
    'prometheus-alertmanager',
    [
      `--config.file=${config}`,
      `--storage.path=${join(dir, 'am-data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
      '--log.level=warn',
    ],
    port,
    `http://127.0.0.1:${port}/-/ready`,
  );
}

async function waitFor<T>(find: () => T | undefined, what: string, timeoutMs = 40_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('examples/alertmanager/alertmanager.yml', () => {
  it('is a config that amtool accepts', () => {
    const output = execFileSync('amtool', ['check-config', exampleConfig], { encoding: 'utf8' });
    expect(output).toContain('SUCCESS');
    expect(output).toContain('2 receivers');
  });
});

describe('a failed deployment reaches a person through Alertmanager', () => {
  const workdir = tempDir();
  let gateway: RunningServer;
  let alertmanager: RunningServer;
  let prometheus: RunningPrometheus;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    gateway = await startPushgateway();
    mkdirSync(join(workdir.path, 'am'));
    alertmanager = await startAlertmanager(join(workdir.path, 'am'), testConfig(receiver.url));
    prometheus = await startPrometheus(workdir.path, gateway.url, [join(examples, 'prometheus/deployctl-rules.yml')], {
      alertmanager: alertmanager.url,
    });
  }, 60_000);

  afterAll(async () => {
    await prometheus?.stop();
    await alertmanager?.stop();
    await gateway?.stop();
    await receiver?.close();
    workdir.remove();
  });

  it('notifies the chat receiver with service, environment and a summary, and resolves after a success', async () => {
    const env = { DEPLOYCTL_PUSHGATEWAY_URL: gateway.url };
    const target = ['--service', 'shop/api', '--env', 'production'];
    const failed = await deployctl(
      ['record', ...target, '--status', 'failure', '--version', '3.1.0', '--commit', 'abc1234'],
      { env, cwd: workdir.path },
    );
    expect(failed.exitCode).toBe(0);

    const isOurs = (n: Notification) =>
      n.alerts.some((a) => a.labels.alertname === 'DeploymentFailed' && a.labels.service === 'shop/api');
    const firing = await waitFor(
      () => receiver.received.find((n) => isOurs(n) && n.status === 'firing'),
      'the firing notification',
      60_000,
    );
    expect(firing.path).toBe('/deployctl');
    expect(firing.receiver).toBe('deploy-chat');
    expect(firing.groupLabels).toEqual({
      alertname: 'DeploymentFailed',
      service: 'shop/api',
      environment: 'production',
    });
    const [alert] = firing.alerts;
    expect(alert!.labels).toMatchObject({
      alertname: 'DeploymentFailed',
      service: 'shop/api',
      environment: 'production',
      severity: 'warning',
      version: '3.1.0',
      commit: 'abc1234',
    });
    expect(alert!.annotations.summary).toBe('The last deployment of shop/api in production failed');
    expect(alert!.annotations.description).toBe(
      'Version 3.1.0 (commit abc1234) failed to deploy. The alert clears with the next successful deployment.',
    );

    const succeeded = await deployctl(
      ['record', ...target, '--status', 'success', '--version', '3.1.1', '--commit', 'abc1235'],
      { env, cwd: workdir.path },
    );
    expect(succeeded.exitCode).toBe(0);
    const resolved = await waitFor(
      () => receiver.received.find((n) => isOurs(n) && n.status === 'resolved'),
      'the resolved notification',
      60_000,
    );
    expect(resolved.receiver).toBe('deploy-chat');
    expect(resolved.alerts[0]!.status).toBe('resolved');
    expect(resolved.alerts[0]!.labels).toMatchObject({
      service: 'shop/api',
      environment: 'production',
      version: '3.1.0',
    });
  }, 120_000);
});
