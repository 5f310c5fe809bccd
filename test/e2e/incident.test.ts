import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import {
  type CapturedWebhook,
  fingerprints,
  postAlerts,
  startAlertmanager,
  startCapturingReceiver,
} from '../helpers/alertmanager-server.js';
import { BIN, cliEnv, deployctl, gatewayEnv, gatewaySample } from '../helpers/cli.js';
import { freePort, type RunningServer, startPushgateway, tempDir } from '../helpers/pushgateway.js';
import { until } from '../helpers/wait.js';

const examples = fileURLToPath(new URL('../../examples/alertmanager/', import.meta.url));
const RELAY = join(examples, 'incident-relay.mjs');
const RELAY_CONFIG = join(examples, 'incident-relay.yml');

/** The script of this test: one alert of checkout in production, one without service labels. */
const NOW = Math.floor(Date.now() / 1000);
const STARTS_AT = new Date((NOW - 300) * 1000 + 250).toISOString(); // "….250Z"
const ENDS_AT = new Date((NOW - 20) * 1000).toISOString();
const OURS = { alertname: 'CheckoutErrors', service: 'checkout', environment: 'production', severity: 'page' };
const UNLABELLED = { alertname: 'CheckoutErrors', instance: 'db1', severity: 'page' };
/** The oracle: times as Unix seconds, from the script's own ISO strings. */
const S = Date.parse(STARTS_AT) / 1000;
const E = Date.parse(ENDS_AT) / 1000;

interface IncidentJson {
  job: string;
  service: string;
  environment: string;
  kind: string;
  id: string;
  incident: string;
  action: 'open' | 'resolve';
  at: number;
  openedAt?: number;
}

/** The records kept in a state directory's outbox. */
function keptRecords(stateDir: string): IncidentJson[] {
  const outbox = join(stateDir, 'outbox');
  if (!existsSync(outbox)) return [];
  return readdirSync(outbox)
    .filter((name) => name.endsWith('.json'))
    .flatMap((name) => {
      let text: string;
      try {
        text = readFileSync(join(outbox, name), 'utf8');
      } catch {
        return []; // taken by a deployctl sending its backlog at this moment
      }
      const kept = JSON.parse(text) as { grouping: Record<string, string>; record: IncidentJson };
      return [{ ...kept.grouping, ...kept.record } as IncidentJson];
    });
}

const essentials = (i: IncidentJson) => ({
  service: i.service,
  environment: i.environment,
  incident: i.incident,
  action: i.action,
  at: i.at,
  ...(i.openedAt !== undefined && { openedAt: i.openedAt }),
});

describe('deployctl incident --from-alertmanager, with the payloads a real Alertmanager posts', () => {
  const workdir = tempDir();
  let gateway: RunningServer;
  let alertmanager: RunningServer;
  let receiver: Awaited<ReturnType<typeof startCapturingReceiver>>;
  let relay: ChildProcess;
  let relayLog = '';
  let relayUrl: string;
  const relayState = join(workdir.path, 'relay-state');
  let fingerprint: string;
  let firing: CapturedWebhook;
  let resolved: CapturedWebhook;

  beforeAll(async () => {
    receiver = await startCapturingReceiver();
    gateway = await startPushgateway();
    // The relay of examples/, on a free port, running the built deployctl against the real gateway.
    const relayPort = await freePort();
    relay = spawn(process.execPath, [RELAY, '--listen', `127.0.0.1:${relayPort}`, '--deployctl', BIN], {
      env: cliEnv(gatewayEnv(gateway.url, relayState)),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    relayUrl = `http://127.0.0.1:${relayPort}`;
    relay.stderr!.on('data', (chunk: Buffer) => (relayLog += chunk.toString()));
    expect(await until(() => relayLog.includes('listening on'), 10_000, 50)).toBe(true);

    // The example's route and receiver, pointed at the relay, with intervals for a test; and a
    // second webhook that captures each body as Alertmanager posted it.
    const config = parse(readFileSync(RELAY_CONFIG, 'utf8'));
    const route = config.route.routes[0];
    Object.assign(route, { group_by: ['alertname'], group_wait: '0s', group_interval: '1s' });
    const incidents = config.receivers.find((r: { name: string }) => r.name === 'deployctl-incidents');
    const webhook = incidents.webhook_configs[0];
    webhook.url = `http://127.0.0.1:${relayPort}${new URL(webhook.url).pathname}`;
    incidents.webhook_configs.push({ url: `${receiver.url}/capture`, send_resolved: true, max_alerts: 0 });
    alertmanager = await startAlertmanager({ dir: join(workdir.path, 'am'), config: stringify(config) });

    // Fire both alerts, then resolve both; keep the notifications that carry both.
    await postAlerts(alertmanager.url, [
      { labels: OURS, startsAt: STARTS_AT },
      { labels: UNLABELLED, startsAt: STARTS_AT },
    ]);
    const both = (w: CapturedWebhook) => w.payload.alerts.length === 2;
    expect(
      await until(() => receiver.received.some((w) => both(w) && w.payload.status === 'firing'), 40_000, 100),
    ).toBe(true);
    firing = receiver.received.find((w) => both(w) && w.payload.status === 'firing')!;
    fingerprint = (await fingerprints(alertmanager.url, 'service')).checkout!;
    await postAlerts(alertmanager.url, [
      { labels: OURS, startsAt: STARTS_AT, endsAt: ENDS_AT },
      { labels: UNLABELLED, startsAt: STARTS_AT, endsAt: ENDS_AT },
    ]);
    expect(
      await until(() => receiver.received.some((w) => both(w) && w.payload.status === 'resolved'), 40_000, 100),
    ).toBe(true);
    resolved = receiver.received.find((w) => both(w) && w.payload.status === 'resolved')!;
  }, 120_000);

  afterAll(async () => {
    await alertmanager?.stop();
    if (relay && relay.exitCode === null) {
      const exited = new Promise((r) => relay.once('exit', r));
      relay.kill('SIGTERM');
      await exited;
    }
    await gateway?.stop();
    await receiver?.close();
    workdir.remove();
  });

  it('the example routing is a config amtool accepts', () => {
    expect(execFileSync('amtool', ['check-config', RELAY_CONFIG], { encoding: 'utf8' })).toContain('SUCCESS');
  });

  it('a firing payload on stdin opens the incident at startsAt, identified by the fingerprint; the unlabelled alert is skipped', async () => {
    expect(fingerprint).toMatch(/^[0-9a-f]{16}$/);
    const state = join(workdir.path, 'dry-firing');
    const result = await deployctl(['incident', '--from-alertmanager', '-', '--dry-run', '--json'], {
      input: firing.body,
      env: gatewayEnv(gateway.url, state),
    });
    expect(result.exitCode).toBe(0);
    const out = JSON.parse(result.stdout) as {
      dryRun: boolean;
      incidents: IncidentJson[];
      alerts: number;
      skipped: number;
    };
    expect(out.dryRun).toBe(true);
    expect(out.incidents.map(essentials)).toEqual([
      { service: 'checkout', environment: 'production', incident: fingerprint, action: 'open', at: S },
    ]);
    expect(out.incidents[0]!.job).toBe('deployctl');
    expect([out.alerts, out.skipped]).toEqual([2, 1]);
    expect(result.stderr).toContain(
      'skipped 1 of 2 alert(s), which open no incident: 1 without the labels service and environment',
    );
    expect(keptRecords(state)).toEqual([]);
  });

  it('a resolved payload from a file opens and resolves it (openedAt = startsAt); a replay gives the same records', async () => {
    const file = join(workdir.path, 'resolved.json');
    writeFileSync(file, resolved.body);
    const env = gatewayEnv(gateway.url, join(workdir.path, 'dry-resolved'));
    const run = () => deployctl(['incident', '--from-alertmanager', file, '--dry-run', '--json'], { env });
    const first = await run();
    expect(first.exitCode).toBe(0);
    const incidents = (JSON.parse(first.stdout) as { incidents: IncidentJson[] }).incidents;
    expect(incidents.map(essentials)).toEqual([
      { service: 'checkout', environment: 'production', incident: fingerprint, action: 'open', at: S },
      { service: 'checkout', environment: 'production', incident: fingerprint, action: 'resolve', at: E, openedAt: S },
    ]);
    const again = await run();
    expect((JSON.parse(again.stdout) as { incidents: IncidentJson[] }).incidents).toEqual(incidents);
    // The open record of the resolved payload is the firing payload's own: the same id.
    const fromFiring = await deployctl(['incident', '--from-alertmanager', '-', '--dry-run', '--json'], {
      input: firing.body,
      env,
    });
    expect((JSON.parse(fromFiring.stdout) as { incidents: IncidentJson[] }).incidents[0]!.id).toBe(incidents[0]!.id);
    expect(incidents[0]!.id).not.toBe(incidents[1]!.id);
  });

  it('custom label names: --service-label and --env-label read other labels', async () => {
    const result = await deployctl(
      [
        'incident',
        '--from-alertmanager',
        '-',
        '--service-label',
        'alertname',
        '--env-label',
        'severity',
        '--dry-run',
        '--json',
      ],
      { input: firing.body, env: gatewayEnv(gateway.url, join(workdir.path, 'dry-labels')) },
    );
    expect(result.exitCode).toBe(0);
    const out = JSON.parse(result.stdout) as { incidents: IncidentJson[]; skipped: number };
    expect(out.skipped).toBe(0);
    expect(out.incidents.map((i) => [i.service, i.environment, i.action])).toEqual([
      ['CheckoutErrors', 'page', 'open'],
      ['CheckoutErrors', 'page', 'open'],
    ]);
  });

  it('label names from the config file: incident.serviceLabel and incident.environmentLabel; a bad one is a config problem', async () => {
    const cwd = join(workdir.path, 'configured');
    mkdirSync(cwd);
    writeFileSync(
      join(cwd, '.deployctlrc.json'),
      JSON.stringify({ incident: { serviceLabel: 'alertname', environmentLabel: 'severity' } }),
    );
    const env = gatewayEnv(gateway.url, join(workdir.path, 'dry-config'));
    const result = await deployctl(['incident', '--from-alertmanager', '-', '--dry-run', '--json'], {
      input: firing.body,
      env,
      cwd,
    });
    expect(result.exitCode).toBe(0);
    const out = JSON.parse(result.stdout) as { incidents: IncidentJson[] };
    expect(out.incidents.map((i) => [i.service, i.environment])).toEqual([
      ['CheckoutErrors', 'page'],
      ['CheckoutErrors', 'page'],
    ]);
    writeFileSync(join(cwd, '.deployctlrc.json'), JSON.stringify({ incident: { serviceLabel: 'not-a-label' } }));
    const strict = await deployctl(['incident', '--from-alertmanager', '-', '--strict'], {
      input: firing.body,
      env,
      cwd,
    });
    expect(strict.exitCode).toBe(2);
    expect(strict.stderr).toContain('incident.serviceLabel');
  });

  it('the attribution window: from --attribution-window or incident.attributionWindow, carried by the open; bad ones exit 2 and push nothing', async () => {
    const cwd = join(workdir.path, 'window-config');
    mkdirSync(cwd);
    writeFileSync(join(cwd, '.deployctlrc.json'), JSON.stringify({ incident: { attributionWindow: '2d' } }));
    const env = gatewayEnv(gateway.url, join(workdir.path, 'window'));
    const job = ['--job', 'window', '-e', 'prod'];
    const failedByIncident = (service: string) =>
      gatewaySample(gateway.url, 'deployctl_failed_changes_total', {
        job: 'window',
        service,
        environment: 'prod',
        reason: 'incident',
      });
    // Each service deployed 30 h ago; an incident opens a minute ago.
    for (const service of ['by-config', 'by-flag', 'by-default']) {
      const deployed = await deployctl(
        [
          'record',
          '-s',
          service,
          ...job,
          '--status',
          'success',
          '--version',
          'v1',
          '--finished-at',
          String(NOW - 30 * 3600),
        ],
        { env },
      );
      expect(deployed.exitCode, deployed.stderr).toBe(0);
    }
    const open = (service: string, extra: string[], dir = workdir.path) =>
      deployctl(['incident', 'open', '-s', service, ...job, '--at', String(NOW - 60), ...extra], { env, cwd: dir });
    const byConfig = await open('by-config', [], cwd);
    expect(byConfig.exitCode, byConfig.stderr).toBe(0);
    const byFlag = await open('by-flag', ['--attribution-window', '36h']);
    expect(byFlag.exitCode, byFlag.stderr).toBe(0);
    const byDefault = await open('by-default', []);
    expect(byDefault.exitCode, byDefault.stderr).toBe(0);
    expect(byDefault.stderr).toContain('none finished in the 24 h before it opened');
    expect(await failedByIncident('by-config')).toBe(1);
    expect(await failedByIncident('by-flag')).toBe(1);
    expect(await failedByIncident('by-default')).toBe(0);
    // The open carries its window (what a dry run would send), only when it is not the default.
    const dry = await deployctl(
      ['incident', 'open', '-s', 'x', ...job, '--attribution-window', '4h', '--dry-run', '--json'],
      { env },
    );
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/attributionWindowSeconds"?:\s*14400/);

    // Bad windows: exit 2 with a clear message, and the group never reaches the gateway.
    for (const [extra, message] of [
      [['--attribution-window', '8d'], '--attribution-window must be a duration from 1m to 7d'],
      [['--attribution-window', 'soon'], '--attribution-window must be a duration from 1m to 7d'],
    ] as const) {
      const bad = await open('never', [...extra]);
      expect(bad.exitCode).toBe(2);
      expect(bad.stderr).toContain(message);
    }
    const onResolve = await deployctl(['incident', 'resolve', '-s', 'never', ...job, '--attribution-window', '2h'], {
      env,
    });
    expect(onResolve.exitCode).toBe(2);
    expect(onResolve.stderr).toContain('--attribution-window is taken when an incident opens');
    writeFileSync(join(cwd, '.deployctlrc.json'), JSON.stringify({ incident: { attributionWindow: 'forever' } }));
    const badConfig = await open('never', ['--strict'], cwd);
    expect(badConfig.exitCode).toBe(2);
    expect(badConfig.stderr).toContain('incident.attributionWindow');
    expect(await gatewaySample(gateway.url, 'deployctl_incidents_total', { job: 'window', service: 'never' })).toBe(
      undefined,
    );
  });

  it('against a real Pushgateway: the firing and resolved payloads open and resolve one incident, replays change nothing', async () => {
    const state = join(workdir.path, 'real');
    const env = gatewayEnv(gateway.url, state);
    // A job of its own: the relay below records the same alert into the group of job deployctl.
    const job = ['--job', 'replayed'];
    const sample = (name: string) =>
      gatewaySample(gateway.url, name, { job: 'replayed', service: 'checkout', environment: 'production' });
    for (const body of [firing.body, firing.body]) {
      const result = await deployctl(['incident', '--from-alertmanager', '-', ...job], { input: body, env });
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stderr).not.toMatch(/kept|cannot be applied/);
    }
    expect(await sample('deployctl_open_incidents')).toBe(1);
    for (const body of [resolved.body, resolved.body, firing.body]) {
      const result = await deployctl(['incident', '--from-alertmanager', '-', ...job], { input: body, env });
      expect(result.exitCode, result.stderr).toBe(0);
    }
    expect(keptRecords(state)).toEqual([]);
    expect(await sample('deployctl_incidents_total')).toBe(1);
    expect(await sample('deployctl_open_incidents')).toBe(0);
    expect(await sample('deployctl_last_incident_timestamp_seconds')).toBe(S);
    // Under --strict a payload that cannot be delivered (nothing listens) exits 1; its records are kept.
    const closed = `http://127.0.0.1:${await freePort()}`;
    const strict = await deployctl(['incident', '--from-alertmanager', '-', '--strict', '--quiet', '--timeout', '1'], {
      input: firing.body,
      env: gatewayEnv(closed, join(workdir.path, 'strict')),
    });
    expect(strict.exitCode).toBe(1);
    expect(keptRecords(join(workdir.path, 'strict')).map(essentials)).toEqual([
      { service: 'checkout', environment: 'production', incident: fingerprint, action: 'open', at: S },
    ]);
  });

  it.each([
    ['not JSON', '{"version": "4", "alerts": [', /the payload on stdin is not JSON/],
    [
      'version 3',
      '{"version": "3", "alerts": []}',
      /not an Alertmanager webhook payload of version 4 \(its version is "3"\)/,
    ],
    ['no alerts array', '{"version": "4", "status": "firing"}', /has no alerts array/],
  ])('a payload that is %s: exit 2, a clear message, nothing kept', async (_what, input, message) => {
    const state = join(workdir.path, `bad-${_what.replace(/\W/g, '')}`);
    const result = await deployctl(['incident', '--from-alertmanager', '-'], {
      input,
      env: gatewayEnv(gateway.url, state),
    });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(keptRecords(state)).toEqual([]);
  });

  it('by hand: open and resolve with --at, one incident per service and environment by default', async () => {
    const env = gatewayEnv(gateway.url, join(workdir.path, 'hand'));
    const at = '2026-01-02T03:04:05Z';
    const open = await deployctl(
      ['incident', 'open', '-s', 'api', '-e', 'staging', '--at', at, '--dry-run', '--json'],
      {
        env,
      },
    );
    expect(open.exitCode).toBe(0);
    expect((JSON.parse(open.stdout) as { incidents: IncidentJson[] }).incidents.map(essentials)).toEqual([
      { service: 'api', environment: 'staging', incident: 'default', action: 'open', at: Date.parse(at) / 1000 },
    ]);
    const resolve = await deployctl(
      ['incident', 'resolve', '--id', 'INC-7', '--at', String(NOW - 60), '--dry-run', '--json'],
      { env: { ...env, DEPLOYCTL_SERVICE: 'api', DEPLOYCTL_ENV: 'staging' } },
    );
    expect((JSON.parse(resolve.stdout) as { incidents: IncidentJson[] }).incidents.map(essentials)).toEqual([
      { service: 'api', environment: 'staging', incident: 'INC-7', action: 'resolve', at: NOW - 60 },
    ]);
    const noService = await deployctl(['incident', 'open', '-e', 'staging', '--strict'], { env });
    expect(noService.exitCode).toBe(2);
    expect(noService.stderr).toContain('no service given');
    const badAt = await deployctl(['incident', 'open', '-s', 'api', '-e', 'staging', '--at', 'yesterday'], { env });
    expect(badAt.exitCode).toBe(2);
    expect(badAt.stderr).toContain('--at "yesterday" is not a timestamp');
  });

  it('Alertmanager -> relay -> deployctl: the relay answers 200 once deployctl exited 0, and the incident is opened and resolved once', async () => {
    // Alertmanager posts each notification to the relay and to the capturing webhook: the relay is
    // done once it has answered as many as were captured.
    const answered = () => relayLog.split('\n').filter((line) => line.includes('POST /alertmanager: deployctl exited'));
    expect(await until(() => answered().length >= Math.max(2, receiver.received.length), 40_000, 100)).toBe(true);
    for (const line of answered()) expect(line).toMatch(/POST \/alertmanager: deployctl exited 0; answered 200$/);
    expect(keptRecords(relayState)).toEqual([]);
    const group = { job: 'deployctl', service: 'checkout', environment: 'production' };
    // Each notification Alertmanager repeats makes the same records: one incident, opened at S, resolved.
    const resolvedOnce = async () =>
      (await gatewaySample(gateway.url, 'deployctl_open_incidents', group)) === 0 &&
      (await gatewaySample(gateway.url, 'deployctl_incidents_total', group)) === 1;
    expect(await until(resolvedOnce, 20_000, 200)).toBe(true);
    expect(await gatewaySample(gateway.url, 'deployctl_last_incident_timestamp_seconds', group)).toBe(S);
  });

  it('the relay answers 400 to a body deployctl refuses (no retry helps) and 405 to anything but POST', async () => {
    const bad = await fetch(`${relayUrl}/refused`, { method: 'POST', body: '{"version": "3", "alerts": []}' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toBe('deployctl exited 2\n');
    expect((await fetch(`${relayUrl}/alertmanager`)).status).toBe(405);
  });
});
