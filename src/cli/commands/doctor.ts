import { access, constants, mkdir } from 'node:fs/promises';
import { redactUrl } from '../../adapters/http-endpoint.js';
import { Prometheus } from '../../adapters/prometheus.js';
import { applyRecord } from '../../backends/pushgateway/apply.js';
import type { Gateway } from '../../backends/pushgateway/client.js';
import { openGateway } from '../../backends/pushgateway/client.js';
import { CONTINUE_WINDOW } from '../../backends/pushgateway/continuation.js';
import { loweredTotals } from '../../backends/pushgateway/continue.js';
import { renderExposition } from '../../backends/pushgateway/exposition.js';
import type { GroupState, ScalarFamily } from '../../backends/pushgateway/model.js';
import { FAMILIES } from '../../core/families.js';
import { Outbox } from '../../recorder/outbox.js';
import type { CommandContext } from '../context.js';

declare const __DEPLOYCTL_VERSION__: string;

export interface Check {
  ok: boolean;
  what: string;
  fix?: string;
  /** Worth fixing, but not a problem that fails doctor. */
  warning?: boolean;
}

/** What the gateway's own flags (its /api/v1/status) say about keeping the metrics across restarts. */
export function persistenceCheck(flags: Record<string, string> | undefined): Check | undefined {
  if (!flags || !('persistence.file' in flags)) return undefined;
  if (flags['persistence.file'])
    return {
      ok: true,
      what: `the gateway keeps its metrics across restarts (--persistence.file ${flags['persistence.file']})`,
    };
  return {
    ok: false,
    warning: true,
    what: 'the gateway keeps its metrics in memory only (no --persistence.file): a restart loses every group, and the deployment totals start again from zero',
    fix: 'start the Pushgateway with --persistence.file=/var/lib/prometheus/pushgateway.db (any writable path)',
  };
}

async function gatewayFlags(gateway: ReturnType<typeof openGateway>): Promise<Record<string, string> | undefined> {
  try {
    const response = await gateway.request('GET', '/api/v1/status');
    return (JSON.parse(response.body) as { data?: { flags?: Record<string, string> } }).data?.flags;
  } catch {
    return undefined;
  }
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

function sameHost(a: URL, b: URL): boolean {
  const port = (u: URL) => u.port || (u.protocol === 'https:' ? '443' : '80');
  const host = (u: URL) => (LOOPBACK.has(u.hostname) ? 'loopback' : u.hostname);
  return port(a) === port(b) && host(a) === host(b);
}

/** Whether the scrape job named `job` in Prometheus's loaded configuration keeps pushed labels. */
export function honorsLabels(configYaml: string, job: string): boolean {
  const blocks = configYaml.split(/\n(?=- job_name: )/);
  const block = blocks.find((b) => b.startsWith(`- job_name: ${job}\n`) || b.includes(`\n- job_name: ${job}\n`));
  return block !== undefined && /\n\s+honor_labels: true\n/.test(`${block}\n`);
}

async function prometheusChecks(url: string, gatewayUrl: URL, timeoutMs: number): Promise<Check[]> {
  const prometheus = new Prometheus(url, timeoutMs);
  const shown = redactUrl(prometheus.base);
  try {
    const targets = await prometheus.get<{
      activeTargets: { scrapePool: string; scrapeUrl: string; health: string; lastError: string }[];
    }>('/api/v1/targets');
    const target = targets.activeTargets.find((t) => sameHost(new URL(t.scrapeUrl), gatewayUrl));
    if (!target) {
      return [
        {
          ok: false,
          what: `Prometheus at ${shown} has no scrape target for the gateway ${redactUrl(gatewayUrl)}`,
          fix: 'add a scrape job for the gateway with honor_labels: true (see examples/prometheus/prometheus.yml)',
        },
      ];
    }
    const checks: Check[] = [
      target.health === 'up'
        ? { ok: true, what: `Prometheus at ${shown} scrapes the gateway (job ${target.scrapePool})` }
        : {
            ok: false,
            what: `Prometheus at ${shown} fails to scrape the gateway (job ${target.scrapePool}): ${target.lastError || target.health}`,
            fix: 'check that Prometheus can reach the gateway',
          },
    ];
    const config = await prometheus.get<{ yaml: string }>('/api/v1/status/config');
    checks.push(
      honorsLabels(config.yaml, target.scrapePool)
        ? { ok: true, what: `scrape job ${target.scrapePool} has honor_labels: true` }
        : {
            ok: false,
            what: `scrape job ${target.scrapePool} lacks honor_labels: true: pushed job labels turn into exported_job`,
            fix: `add honor_labels: true to the scrape job ${target.scrapePool}`,
          },
    );
    return checks;
  } catch (error) {
    return [{ ok: false, what: (error as Error).message, fix: 'is --prometheus the address of a Prometheus server?' }];
  }
}

/**
 * Groups whose totals on the gateway are missing or below what Prometheus saw (a gateway restarted
 * without persistence, or from an old file): Prometheus would see those counters reset.
 */
async function totalsChecks(url: string, gateway: Gateway, job: string, timeoutMs: number): Promise<Check[]> {
  try {
    const prometheus = new Prometheus(url, timeoutMs);
    const seen = await prometheus.query(
      `max_over_time(${FAMILIES.deployments.name}{job=${JSON.stringify(job)}}[${CONTINUE_WINDOW}])`,
    );
    const groups = await gateway.readAllGroups();
    const byGroup = new Map<string, GroupState>();
    for (const sample of seen) {
      const key = JSON.stringify([sample.labels.service, sample.labels.environment]);
      const { job: _job, service: _service, environment: _environment, instance: _instance, ...labels } = sample.labels;
      const family = byGroup.get(key)?.get(FAMILIES.deployments.name) as ScalarFamily | undefined;
      if (family) family.series.push({ labels, value: sample.value });
      else
        byGroup.set(
          key,
          new Map([
            [FAMILIES.deployments.name, { ...FAMILIES.deployments, series: [{ labels, value: sample.value }] }],
          ]),
        );
    }
    const lowered: string[] = [];
    for (const [key, scraped] of byGroup) {
      const [service, environment] = JSON.parse(key) as [string, string];
      const held =
        groups.find((g) => g.labels.job === job && g.labels.service === service && g.labels.environment === environment)
          ?.state ?? new Map();
      if (loweredTotals(held, scraped).length) lowered.push(`${service} in ${environment}`);
    }
    if (lowered.length === 0)
      return [
        {
          ok: true,
          what: `every group's deployment totals on the gateway are at least what Prometheus saw in the last ${CONTINUE_WINDOW}`,
        },
      ];
    return [
      {
        ok: false,
        what: `${lowered.length} group(s) hold fewer deployments on the gateway than Prometheus saw (the gateway lost them: restarted without persistence, or from an old file): ${lowered.slice(0, 5).join(', ')}${lowered.length > 5 ? ', …' : ''}`,
        fix: `record the next deployment of each with DEPLOYCTL_PROMETHEUS_URL=${redactUrl(new URL(url))} set: deployctl continues its totals from Prometheus; run the gateway with --persistence.file`,
      },
    ];
  } catch (error) {
    return [{ ok: false, what: `could not compare the gateway's totals with Prometheus: ${(error as Error).message}` }];
  }
}

/** `deployctl doctor`: the resolved configuration, the gateway, Prometheus, and what a record would push. */
export async function doctorCommand(
  flags: { prometheus?: string },
  { settings, reporter, env, now }: CommandContext,
): Promise<number> {
  const gateway = openGateway(settings, reporter);
  const checks: Check[] = [];
  try {
    const started = performance.now();
    if (settings.remoteWrite)
      checks.push(
        ...(await (await import('../../backends/remote-write/doctor.js')).remoteWriteChecks(settings, reporter)),
      );
    else
      try {
        const version = await gateway.version();
        checks.push({
          ok: true,
          what: `gateway ${gateway.displayUrl('')} answers, version ${version ?? 'unknown'} (${Math.round(performance.now() - started)} ms)`,
        });
        const persistence = persistenceCheck(await gatewayFlags(gateway));
        if (persistence) checks.push(persistence);
      } catch (error) {
        checks.push({
          ok: false,
          what: (error as Error).message,
          fix: 'start the Pushgateway or fix --pushgateway / DEPLOYCTL_PUSHGATEWAY_URL',
        });
      }

    try {
      if (!settings.dryRun) await mkdir(settings.stateDir, { recursive: true, mode: 0o700 });
      await access(settings.stateDir, constants.W_OK);
      checks.push({ ok: true, what: `state directory ${settings.stateDir} is writable` });
    } catch (error) {
      checks.push({
        ok: false,
        what: `state directory ${settings.stateDir} is not writable: ${(error as NodeJS.ErrnoException).code}`,
        fix: 'set DEPLOYCTL_STATE_DIR to a writable directory',
      });
    }
    const { entries, quarantined } = await new Outbox(settings.stateDir).list({ leaveInPlace: true });
    checks.push(
      entries.length === 0
        ? { ok: true, what: 'the outbox is empty' }
        : {
            ok: false,
            what: `${entries.length} record(s) kept in the outbox, not yet delivered`,
            fix: 'deployctl flush (deployctl flush --dry-run lists them)',
          },
    );
    if (quarantined.length)
      checks.push({
        ok: false,
        what: `${quarantined.length} file(s) in the outbox are not records deployctl can send`,
        fix: 'look at them; deployctl never sends them and moves them to outbox/quarantine/',
      });

    const prometheusUrl = flags.prometheus ?? env.DEPLOYCTL_PROMETHEUS_URL;
    if (prometheusUrl && !settings.remoteWrite) {
      checks.push(...(await prometheusChecks(prometheusUrl, gateway.base, settings.timeoutSeconds * 1000)));
      checks.push(...(await totalsChecks(prometheusUrl, gateway, settings.job, settings.timeoutSeconds * 1000)));
    }

    const auth = settings.auth.token
      ? 'bearer token'
      : settings.auth.username || gateway.base.username
        ? `basic (user ${settings.auth.username ?? decodeURIComponent(gateway.base.username)})`
        : 'none';
    const tls =
      [settings.tls.ca && 'CA file', settings.tls.cert && 'client certificate', settings.tls.insecure && 'INSECURE']
        .filter(Boolean)
        .join(', ') || 'system defaults';
    const config = {
      version: typeof __DEPLOYCTL_VERSION__ === 'string' ? __DEPLOYCTL_VERSION__ : 'dev',
      node: process.version,
      configFile: settings.configFile ?? null,
      pushgateway: { value: redactUrl(settings.pushgateway), from: settings.sources.pushgateway },
      job: { value: settings.job, from: settings.sources.job },
      service: { value: settings.service ?? null, from: settings.sources.service },
      environment: { value: settings.environment ?? null, from: settings.sources.environment },
      timeoutSeconds: { value: settings.timeoutSeconds, from: settings.sources.timeout },
      strict: { value: settings.strict, from: settings.sources.strict },
      stateDir: settings.stateDir,
      auth,
      headers: Object.keys(settings.auth.headers ?? {}),
      tls,
    };

    let wouldPush: string | undefined;
    if (settings.service !== undefined && settings.environment !== undefined && settings.remoteWrite) {
      wouldPush = (await import('../../backends/remote-write/doctor.js')).wouldWrite(settings, now());
    } else if (settings.service !== undefined && settings.environment !== undefined) {
      const applied = applyRecord(
        new Map(),
        {
          kind: 'deployment',
          id: 'doctor',
          status: 'success',
          finishedAt: now(),
          version: '',
          commit: '',
          labels: settings.labels,
        },
        now(),
      );
      wouldPush = await renderExposition(
        applied.families.filter((f) => f.name !== 'deployctl_applied_record_timestamp_seconds'),
      );
    }

    const problems = checks.filter((c) => !c.ok && !c.warning).length;
    if (settings.json) {
      reporter.json({ config, checks, wouldPush: wouldPush ?? null, problems });
      return problems ? 1 : 0;
    }
    const lines = [
      `deployctl ${config.version} on node ${config.node}`,
      `config file   ${config.configFile ?? '(none found)'}`,
      ...(['pushgateway', 'job', 'service', 'environment', 'timeoutSeconds', 'strict'] as const).map((key) => {
        const { value, from } = config[key];
        return `${key.replace('Seconds', '').padEnd(13)} ${value ?? '-'}  (${from})`;
      }),
      `state dir     ${config.stateDir}`,
      `auth          ${auth}${config.headers.length ? `; headers ${config.headers.join(', ')}` : ''}`,
      `tls           ${tls}`,
      '',
      ...checks.flatMap((c) => [
        `${c.ok ? '✔' : c.warning ? '!' : '✖'} ${c.what}`,
        ...(c.fix ? [`  fix: ${c.fix}`] : []),
      ]),
    ];
    if (wouldPush)
      lines.push(
        '',
        `a first record of ${settings.service} in ${settings.environment} would push (deployctl record --dry-run shows the exact text):`,
        wouldPush.trimEnd(),
      );
    reporter.info(lines.join('\n'));
    return problems ? 1 : 0;
  } finally {
    gateway.close();
  }
}
