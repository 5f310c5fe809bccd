/**
 * DORA's five metrics as the SPEC defines them (Definitions: failed change, change failure rate,
 * failed deployment recovery time, deployment rework rate), end to end: one scripted history in
 * which each way a change fails happens in its own group — a failed deploy then a fix; a deploy
 * whose `verify` fails on a real metric in Prometheus, then a fix that verifies; an incident with
 * no deploy; an incident with a fix deployed while it is open; a rollback; an incident from a real
 * Alertmanager, firing then resolved; an incident long after the last deploy — recorded with the
 * built CLI on a Pushgateway scraped by Prometheus and on Prometheus's remote-write receiver. The
 * oracle below computes each group's numbers from the script alone; `dora --json` and the stores
 * must give exactly those. Replayed Alertmanager payloads, an incident recorded twice from two
 * machines and an incident kept while the backend was down and flushed late count once.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CapturedWebhook,
  type PostableAlert,
  postAlerts,
  startAlertmanager,
  startCapturingReceiver,
} from '../helpers/alertmanager-server.js';
import { deployctl } from '../helpers/cli.js';
import { TestRepo } from '../helpers/git.js';
import { eventually, type RunningPrometheus, startPrometheus } from '../helpers/prometheus.js';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { type RunningServer, startPushgateway, tempDir } from '../helpers/pushgateway.js';
import { type RunningReceiver, startPrometheusReceiver } from '../helpers/victoria-metrics.js';

const root = new URL('../../', import.meta.url).pathname;
const M = 60;
const H = 3_600;
const NOW = Math.floor(Date.now() / 1000);
const ENV = 'prod';
const WINDOW = '7d';
const ATTRIBUTION = 24 * H;

/** What happened to one group, oldest first; verify and the Alertmanager incident get their times when they run. */
type Event =
  | { kind: 'deploy'; status: 'success' | 'failure'; commit: string; at: number }
  | { kind: 'verify'; result: 'pass' | 'fail'; startedAt: number; finishedAt: number }
  | { kind: 'open'; incident: string; at: number; window?: number }
  | { kind: 'resolve'; incident: string; at: number };

/** Commits of the rollback group's git history: b2 is rolled back to its parent b1. */
const GIT = { b1: NOW - 30 * H, b2: NOW - 29 * H } as const;

interface Numbers {
  deployments: { success: number; failure: number };
  failedChanges: number;
  reasons: Record<string, number>;
  recoveries: number[];
  rework: number;
}

/**
 * The SPEC's definitions applied to one group's events: a deployment is a failed change when it
 * failed, was rolled back (the latest success a rollback replaced), failed a verification (the
 * latest deployment finished before the verification started), or had an incident attributed (the
 * latest success when the incident opened, within 24 h after its finish or the window the incident
 * was opened with) — once, with the first
 * reason by the time it became known. Recovery: from when the failure was known to the incident's
 * resolution (incident), the rollback (rollback), or the group's next success after that moment.
 * Rework: a deployment that finishes while another failed change is known and not recovered, or a rollback.
 */
function oracle(events: Event[], ancestorsOf: (commit: string) => string[] = () => []): Numbers {
  type Deploy = Extract<Event, { kind: 'deploy' }>;
  const deploys = events.filter((e): e is Deploy => e.kind === 'deploy').sort((a, b) => a.at - b.at);
  const successes = deploys.filter((d) => d.status === 'success');
  const latestSuccessAt = (t: number) => successes.filter((d) => d.at <= t).at(-1);
  type Failed = { deploy: Deploy; reason: string; knownAt: number; recoveredAt?: number };
  const failed = new Map<Deploy, Failed>();
  const rollbacks = new Set<Deploy>();
  const candidates: Failed[] = [];
  const nextSuccessAfter = (t: number) => successes.find((d) => d.at > t)?.at;
  for (const [i, d] of deploys.entries()) {
    if (d.status === 'failure') candidates.push({ deploy: d, reason: 'failure', knownAt: d.at });
    if (d.status !== 'success') continue;
    const running = successes.filter((s) => deploys.indexOf(s) < i).at(-1);
    if (running && running.commit !== d.commit && ancestorsOf(running.commit).includes(d.commit)) {
      rollbacks.add(d);
      candidates.push({ deploy: running, reason: 'rollback', knownAt: running.at, recoveredAt: d.at });
    }
  }
  for (const e of events) {
    if (e.kind === 'verify' && e.result === 'fail') {
      const judged = deploys.filter((d) => d.at < e.startedAt).at(-1);
      if (judged) candidates.push({ deploy: judged, reason: 'verification', knownAt: e.finishedAt });
    }
    if (e.kind === 'open') {
      const latest = latestSuccessAt(e.at);
      const resolved = events.find(
        (r): r is Extract<Event, { kind: 'resolve' }> =>
          r.kind === 'resolve' && r.incident === e.incident && r.at >= e.at,
      );
      if (latest && e.at - latest.at <= (e.window ?? ATTRIBUTION))
        candidates.push({ deploy: latest, reason: 'incident', knownAt: e.at, recoveredAt: resolved?.at });
    }
  }
  for (const c of candidates.sort((a, b) => a.knownAt - b.knownAt)) {
    if (failed.has(c.deploy)) continue;
    failed.set(c.deploy, { ...c, recoveredAt: c.recoveredAt ?? nextSuccessAfter(c.knownAt) });
  }
  const reasons: Record<string, number> = { failure: 0, rollback: 0, verification: 0, incident: 0 };
  for (const f of failed.values()) reasons[f.reason]! += 1;
  const rework = deploys.filter(
    (d) =>
      rollbacks.has(d) ||
      [...failed.values()].some(
        (f) => f.deploy !== d && f.knownAt < d.at && (f.recoveredAt === undefined || d.at <= f.recoveredAt),
      ),
  ).length;
  return {
    deployments: {
      success: successes.length,
      failure: deploys.length - successes.length,
    },
    failedChanges: failed.size,
    reasons,
    recoveries: [...failed.values()].flatMap((f) => (f.recoveredAt === undefined ? [] : [f.recoveredAt - f.knownAt])),
    rework,
  };
}

describe('the oracle', () => {
  it('reads each way a change fails as the definitions say', () => {
    const d = (status: 'success' | 'failure', commit: string, at: number): Event => ({
      kind: 'deploy',
      status,
      commit,
      at,
    });
    expect(oracle([d('success', 'a', 0), d('failure', 'b', 100), d('success', 'c', 160)])).toEqual({
      deployments: { success: 2, failure: 1 },
      failedChanges: 1,
      reasons: { failure: 1, rollback: 0, verification: 0, incident: 0 },
      recoveries: [60],
      rework: 1,
    });
    // An incident on a failed change already counted adds nothing; one 25 h after the deploy is nobody's.
    expect(
      oracle([
        d('success', 'a', 0),
        { kind: 'open', incident: 'x', at: 25 * H },
        { kind: 'resolve', incident: 'x', at: 26 * H },
      ]).failedChanges,
    ).toBe(0);
    const rolled = oracle([d('success', 'b1', 0), d('success', 'b2', 10), d('success', 'b1', 70)], (c) =>
      c === 'b2' ? ['b2', 'b1'] : [c],
    );
    expect(rolled).toMatchObject({ failedChanges: 1, recoveries: [60], rework: 1, reasons: { rollback: 1 } });
  });
});

/** Alertmanager's routing for the test: every alert straight to the capturing webhook, resolved ones too. */
const alertmanagerConfig = (webhook: string) =>
  [
    'route:',
    '  receiver: incidents',
    '  group_by: [alertname, service, environment]',
    '  group_wait: 0s',
    '  group_interval: 1s',
    '  repeat_interval: 1h',
    'receivers:',
    '  - name: incidents',
    '    webhook_configs:',
    `      - url: ${webhook}/hook`,
    '        send_resolved: true',
    '',
  ].join('\n');

const iso = (t: number) => new Date(t * 1000).toISOString();

/** The firing and the resolved webhook payloads a real Alertmanager sends for one alert of `service`. */
async function alertmanagerPayloads(
  alertmanager: RunningServer,
  receiver: { received: CapturedWebhook[] },
  service: string,
  startsAt: number,
  endsAt: number,
): Promise<{ firing: string; resolved: string }> {
  const labels = { alertname: 'ErrorBudgetBurn', service, environment: ENV, severity: 'page' };
  const post = (alert: PostableAlert) => postAlerts(alertmanager.url, [alert]);
  const ours = (status: string) =>
    receiver.received.find(
      ({ payload }) => payload.status === status && payload.alerts.some((a) => a.labels.service === service),
    )?.body;
  await post({ labels, startsAt: iso(startsAt), endsAt: iso(NOW + 2 * H) });
  const firing = await eventually(
    async () => ours('firing'),
    (b) => b !== undefined,
    30_000,
  );
  await post({ labels, startsAt: iso(startsAt), endsAt: iso(endsAt) });
  const resolved = await eventually(
    async () => ours('resolved'),
    (b) => b !== undefined,
    30_000,
  );
  expect(firing, 'the firing payload').toBeDefined();
  expect(resolved, 'the resolved payload').toBeDefined();
  return { firing: firing!, resolved: resolved! };
}

const workdir = tempDir();
let metrics: RunningServer;
let prometheus: RunningPrometheus;
let receiver: RunningReceiver;
let alertmanager: RunningServer;
let webhook: Awaited<ReturnType<typeof startCapturingReceiver>>;
let repo: { path: string; shas: Record<keyof typeof GIT, string> };
let payloads: { firing: string; resolved: string };

beforeAll(async () => {
  metrics = await startPushgateway();
  mkdirSync(join(workdir.path, 'prometheus'));
  prometheus = await startPrometheus(join(workdir.path, 'prometheus'), metrics.url, [
    join(root, 'examples/prometheus/deployctl-rules.yml'),
  ]);
  receiver = await startPrometheusReceiver(join(workdir.path, 'receiver'), {
    ruleFiles: [join(root, 'examples/prometheus/remote-write/deployctl-rules.yml')],
  });
  webhook = await startCapturingReceiver();
  alertmanager = await startAlertmanager({
    dir: join(workdir.path, 'alertmanager'),
    config: alertmanagerConfig(webhook.url),
  });
  const git = new TestRepo(join(workdir.path, 'repo'));
  const b1 = git.commit('b1', GIT.b1);
  const b2 = git.commit('b2', GIT.b2);
  repo = { path: git.path, shas: { b1, b2 } };
  payloads = await alertmanagerPayloads(alertmanager, webhook, 'five/alertmanager', NOW - 2 * H, NOW - 1 * H);
}, 120_000);

afterAll(async () => {
  await alertmanager?.stop();
  await webhook?.close();
  await receiver?.stop();
  await prometheus?.stop();
  await metrics?.stop();
  workdir.remove();
});

/** The application metric `verify` judges: an error ratio per service, pushed to the gateway Prometheus scrapes. */
async function setErrorRatio(service: string, ratio: number): Promise<void> {
  const path = `/metrics/job/app/service@base64/${Buffer.from(service).toString('base64url')}/environment/${ENV}`;
  const response = await fetch(`${metrics.url}${path}`, {
    method: 'PUT',
    body: `# TYPE app_error_ratio gauge\napp_error_ratio ${ratio}\n`,
  });
  expect(response.status).toBe(200);
  await eventually(
    () => prometheus.query(`app_error_ratio{service="${service}"}`),
    (r) => r.length === 1 && Number(r[0]!.value[1]) === ratio,
    30_000,
  );
}

interface Backend {
  name: string;
  env: Record<string, string>;
  /** The URL records go to, as a flag (for the proxy in front of it). */
  flag: string;
  url: string;
  readFlags: string[];
  /** Failed changes by reason of one group, as the store holds them. */
  storedReasons(service: string): Promise<Record<string, number>>;
}

async function run(backend: Backend, args: string[], options: { state?: string; input?: string; cwd?: string } = {}) {
  const env = { ...backend.env, DEPLOYCTL_STATE_DIR: options.state ?? join(workdir.path, backend.name, 'state') };
  return deployctl([...args, '--timeout', '10'], {
    env,
    cwd: options.cwd ?? workdir.path,
    ...(options.input !== undefined && { input: options.input }),
  });
}

async function ok(result: Promise<{ exitCode: number; stdout: string; stderr: string }>, code = 0) {
  const r = await result;
  expect(r.exitCode, r.stderr).toBe(code);
  return r;
}

/** Records the script on one backend and returns each group's events, with the times verify really ran. */
async function recordScript(backend: Backend): Promise<Record<string, Event[]>> {
  const events: Record<string, Event[]> = {};
  const deploy = async (service: string, status: 'success' | 'failure', commit: string, at: number, cwd?: string) => {
    (events[service] ??= []).push({ kind: 'deploy', status, commit, at });
    const args = ['record', '-s', service, '-e', ENV, '--status', status, '--commit', commit];
    args.push('--version', commit.slice(0, 7), '--finished-at', String(at));
    // Outside the git history, the commit time is given: 10 minutes before the deploy.
    if (!cwd) args.push('--commit-time', String(at - 10 * M));
    await ok(run(backend, args, { ...(cwd && { cwd }) }));
  };
  const incident = async (
    service: string,
    action: 'open' | 'resolve',
    id: string,
    at: number,
    { state, window }: { state?: string; window?: [string, number] } = {},
  ) => {
    (events[service] ??= []).push(
      action === 'open'
        ? { kind: 'open', incident: id, at, ...(window && { window: window[1] }) }
        : { kind: 'resolve', incident: id, at },
    );
    const args = ['incident', action, '-s', service, '-e', ENV, '--id', id, '--at', String(at)];
    if (window) args.push('--attribution-window', window[0]);
    await ok(run(backend, args, { state }));
  };
  const verify = async (service: string, want: 0 | 1) => {
    const result = await ok(
      run(backend, [
        'verify',
        '-s',
        service,
        '-e',
        ENV,
        '--prometheus',
        prometheus.url,
        '--check',
        'max(app_error_ratio{service="$service"}) <= 0.05',
        '--for',
        '0s',
        '--json',
      ]),
      want,
    );
    const verdict = JSON.parse(result.stdout) as { startedAt: number; finishedAt: number };
    (events[service] ??= []).push({
      kind: 'verify',
      result: want === 0 ? 'pass' : 'fail',
      startedAt: verdict.startedAt,
      finishedAt: verdict.finishedAt,
    });
  };

  // A failed deploy, then a fix.
  await deploy('five/failed-deploy', 'success', 'f1', NOW - 10 * H);
  await deploy('five/failed-deploy', 'failure', 'f2', NOW - 8 * H);
  await deploy('five/failed-deploy', 'success', 'f3', NOW - 7 * H);

  // A deploy whose verification fails on a real metric, then a fix that verifies.
  await deploy('five/verify', 'success', 'v1', NOW - 1 * H);
  await setErrorRatio('five/verify', 0.2);
  await verify('five/verify', 1);
  const fixAt = Math.ceil(Date.now() / 1000) + 1;
  await deploy('five/verify', 'success', 'v2', fixAt);
  await setErrorRatio('five/verify', 0.01);
  while (Date.now() / 1000 <= fixAt + 1) await new Promise((r) => setTimeout(r, 200));
  await verify('five/verify', 0);

  // An incident with no deploy at all.
  await incident('five/incident-only', 'open', 'db-down', NOW - 5 * H);
  await incident('five/incident-only', 'resolve', 'db-down', NOW - 4 * H);

  // An incident with a fix deployed while it is open; a second machine records the same incident.
  await deploy('five/incident-fix', 'success', 'i1', NOW - 6 * H);
  await incident('five/incident-fix', 'open', 'checkout-5xx', NOW - 5 * H);
  const otherMachine = join(workdir.path, backend.name, 'other-machine');
  await ok(
    run(
      backend,
      ['incident', 'open', '-s', 'five/incident-fix', '-e', ENV, '--id', 'checkout-5xx', '--at', String(NOW - 5 * H)],
      {
        state: otherMachine,
      },
    ),
  );
  await deploy('five/incident-fix', 'success', 'i2', NOW - 4.5 * H);
  await incident('five/incident-fix', 'resolve', 'checkout-5xx', NOW - 4 * H);
  await ok(
    run(
      backend,
      [
        'incident',
        'resolve',
        '-s',
        'five/incident-fix',
        '-e',
        ENV,
        '--id',
        'checkout-5xx',
        '--at',
        String(NOW - 4 * H),
      ],
      {
        state: otherMachine,
      },
    ),
  );

  // A rollback: b2 is replaced by its parent b1.
  await deploy('five/rollback', 'success', repo.shas.b1, NOW - 9 * H, repo.path);
  await deploy('five/rollback', 'success', repo.shas.b2, NOW - 8 * H, repo.path);
  await deploy('five/rollback', 'success', repo.shas.b1, NOW - 7.5 * H, repo.path);

  // An incident from Alertmanager, firing then resolved; each payload replayed.
  await deploy('five/alertmanager', 'success', 'a1', NOW - 3 * H);
  for (const payload of [payloads.firing, payloads.firing, payloads.resolved, payloads.resolved, payloads.firing]) {
    await ok(run(backend, ['incident', '--from-alertmanager', '-'], { input: payload }));
  }
  events['five/alertmanager']!.push(
    { kind: 'open', incident: 'am', at: NOW - 2 * H },
    { kind: 'resolve', incident: 'am', at: NOW - 1 * H },
  );

  // An incident long after the last deploy: attributed to nothing.
  await deploy('five/late-incident', 'success', 'l1', NOW - 40 * H);
  await incident('five/late-incident', 'open', 'late', NOW - 2 * H);
  await incident('five/late-incident', 'resolve', 'late', NOW - 1 * H);

  // The same, opened with a 48 h attribution window: attributed. And a 1 h window that an incident 2 h after misses.
  await deploy('five/wide-window', 'success', 'w1', NOW - 40 * H);
  await incident('five/wide-window', 'open', 'wide', NOW - 2 * H, { window: ['48h', 48 * H] });
  await incident('five/wide-window', 'resolve', 'wide', NOW - 1 * H);
  await deploy('five/narrow-window', 'success', 'n1', NOW - 4 * H);
  await incident('five/narrow-window', 'open', 'narrow', NOW - 2 * H, { window: ['1h', H] });
  await incident('five/narrow-window', 'resolve', 'narrow', NOW - 1 * H);

  // An incident kept while the backend was down, flushed after a newer deployment landed.
  const down = { value: true };
  const proxy: TestProxy = await startProxy(backend.url, () =>
    down.value ? { status: 503, body: 'unavailable' } : 'forward',
  );
  const viaProxy = { ...backend, env: { ...backend.env, [backend.flag]: proxy.url + new URL(backend.url).pathname } };
  try {
    await deploy('five/kept', 'success', 'k1', NOW - 3 * H);
    (events['five/kept'] ??= []).push({ kind: 'open', incident: 'kept', at: NOW - 2 * H });
    const kept = await run(viaProxy, [
      'incident',
      'open',
      '-s',
      'five/kept',
      '-e',
      ENV,
      '--id',
      'kept',
      '--at',
      String(NOW - 2 * H),
      '--timeout',
      '1',
    ]);
    expect(kept.exitCode, kept.stderr).toBe(0);
    expect(kept.stderr).toMatch(/kept/);
    await deploy('five/kept', 'success', 'k2', NOW - 1.5 * H);
    down.value = false;
    await ok(run(viaProxy, ['flush']));
    await ok(run(viaProxy, ['flush']));
    await incident('five/kept', 'resolve', 'kept', NOW - 1 * H);
  } finally {
    await proxy.close();
  }
  return events;
}

const ancestorsOf = (commit: string) => (commit === repo.shas.b2 ? [repo.shas.b2, repo.shas.b1] : [commit]);

interface DoraRow {
  service: string;
  deployments: Record<string, number>;
  failedChanges: number;
  changeFailureRate: { value: number | null };
  failedDeploymentRecoveryTimeSeconds: { value: number | null };
  deploymentReworkRate: { value: number | null };
}

const sortedKeys = (value: unknown) =>
  value && typeof value === 'object'
    ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)))
    : value;

async function checkBackend(backend: Backend, events: Record<string, Event[]>): Promise<void> {
  const dora = await ok(run(backend, ['dora', '--window', WINDOW, '--json', ...backend.readFlags]));
  const rows = (JSON.parse(dora.stdout) as { rows: DoraRow[] }).rows.filter((r) => r.service.startsWith('five/'));
  const problems: string[] = [];
  let numbers = 0;
  for (const [service, list] of Object.entries(events)) {
    const want = oracle(list, ancestorsOf);
    const finished = want.deployments.success + want.deployments.failure;
    const row = rows.find((r) => r.service === service);
    const stored = await backend.storedReasons(service);
    const mean = want.recoveries.length ? want.recoveries.reduce((a, b) => a + b, 0) / want.recoveries.length : null;
    const checks: [string, unknown, unknown][] = [
      ['stored failed changes by reason', stored, finished ? want.reasons : stored],
      ['failedChanges', row?.failedChanges ?? 0, want.failedChanges],
      ['changeFailureRate', row?.changeFailureRate.value ?? null, finished ? want.failedChanges / finished : null],
      ['deploymentReworkRate', row?.deploymentReworkRate.value ?? null, finished ? want.rework / finished : null],
    ];
    for (const [what, got, expected] of checks) {
      numbers += 1;
      const same =
        typeof got === 'number' && typeof expected === 'number'
          ? Math.abs(got - expected) < 1e-9
          : JSON.stringify(sortedKeys(got)) === JSON.stringify(sortedKeys(expected));
      if (!same) problems.push(`${service} ${what}: want ${JSON.stringify(expected)}, got ${JSON.stringify(got)}`);
    }
    numbers += 1;
    const recovery = row?.failedDeploymentRecoveryTimeSeconds.value ?? null;
    if (mean === null ? recovery !== null : recovery === null || Math.abs(recovery - mean) > 1e-6 * mean + 1e-3)
      problems.push(`${service} recovery: want ${mean}, got ${recovery}`);
  }
  expect(problems).toEqual([]);
  expect(numbers).toBe(Object.keys(events).length * 5);
}

describe('the five DORA metrics of one scripted history', () => {
  it('on a Pushgateway scraped by Prometheus: the store and dora --json equal the oracle', async () => {
    const backend: Backend = {
      name: 'pushgateway',
      env: { DEPLOYCTL_PUSHGATEWAY_URL: metrics.url },
      flag: 'DEPLOYCTL_PUSHGATEWAY_URL',
      url: metrics.url,
      readFlags: ['--prometheus', prometheus.url],
      async storedReasons(service) {
        const result = await prometheus.query(`deployctl_failed_changes_total{service="${service}"}`);
        return Object.fromEntries(result.map((s) => [s.metric.reason!, Number(s.value[1])]));
      },
    };
    const events = await recordScript(backend);
    // Prometheus has scraped the whole history: every deployment and every recovery.
    const wanted = Object.values(events).map((e) => oracle(e, ancestorsOf));
    const scraped = {
      'sum(deployctl_deployments_total{service=~"five/.*", status!="cancelled"})': wanted.reduce(
        (n, o) => n + o.deployments.success + o.deployments.failure,
        0,
      ),
      'sum(deployctl_failed_deployment_recovery_seconds_count{service=~"five/.*"})': wanted.reduce(
        (n, o) => n + o.recoveries.length,
        0,
      ),
    };
    for (const [expr, total] of Object.entries(scraped))
      await eventually(
        () => prometheus.query(expr),
        (r) => r.length === 1 && Number(r[0]!.value[1]) === total,
        40_000,
      );
    await checkBackend(backend, events);
  }, 240_000);

  it("on Prometheus's remote-write receiver: the ledger and dora --json equal the oracle", async () => {
    const backend: Backend = {
      name: 'remote-write',
      env: { DEPLOYCTL_REMOTE_WRITE_URL: receiver.writeUrl },
      flag: 'DEPLOYCTL_REMOTE_WRITE_URL',
      url: receiver.writeUrl,
      readFlags: [],
      async storedReasons(service) {
        const result = await receiver.query(
          `sum by (reason) (count_over_time(deployctl_deployment_failed_change_timestamp_seconds{service="${service}"}[${WINDOW}]))`,
        );
        const reasons: Record<string, number> = { failure: 0, rollback: 0, verification: 0, incident: 0 };
        for (const s of result) reasons[s.metric.reason!] = Number(s.value[1]);
        return reasons;
      },
    };
    const events = await recordScript(backend);
    await checkBackend(backend, events);
  }, 240_000);
});
