import { access, constants, mkdir } from 'node:fs/promises';
import type { CommandContext } from '../context.js';
import { openGateway } from '../deliver.js';
import { renderExposition } from '../metrics/exposition.js';
import { applyRecord } from '../metrics/apply.js';
import { Outbox } from '../outbox.js';
import { Prometheus } from '../prometheus.js';
import { redactUrl } from '../gateway/client.js';

declare const __DEPLOYCTL_VERSION__: string;

export interface Check {
  ok: boolean;
  what: string;
  fix?: string;
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
    const targets = await prometheus.get<{ activeTargets: { scrapePool: string; scrapeUrl: string; health: string; lastError: string }[] }>('/api/v1/targets');
    const target = targets.activeTargets.find((t) => sameHost(new URL(t.scrapeUrl), gatewayUrl));
    if (!target) {
      return [{ ok: false, what: `Prometheus at ${shown} has no scrape target for the gateway ${redactUrl(gatewayUrl)}`, fix: 'add a scrape job for the gateway with honor_labels: true (see examples/prometheus/prometheus.yml)' }];
    }
    const checks: Check[] = [
      target.health === 'up'
        ? { ok: true, what: `Prometheus at ${shown} scrapes the gateway (job ${target.scrapePool})` }
        : { ok: false, what: `Prometheus at ${shown} fails to scrape the gateway (job ${target.scrapePool}): ${target.lastError || target.health}`, fix: 'check that Prometheus can reach the gateway' },
    ];
    const config = await prometheus.get<{ yaml: string }>('/api/v1/status/config');
    checks.push(
      honorsLabels(config.yaml, target.scrapePool)
        ? { ok: true, what: `scrape job ${target.scrapePool} has honor_labels: true` }
        : { ok: false, what: `scrape job ${target.scrapePool} lacks honor_labels: true: pushed job labels turn into exported_job`, fix: `add honor_labels: true to the scrape job ${target.scrapePool}` },
    );
    return checks;
  } catch (error) {
    return [{ ok: false, what: (error as Error).message, fix: 'is --prometheus the address of a Prometheus server?' }];
  }
}

/** `deployctl doctor`: the resolved configuration, the gateway, Prometheus, and what a record would push. */
export async function doctorCommand(flags: { prometheus?: string }, { settings, reporter, env, now }: CommandContext): Promise<number> {
  const gateway = openGateway(settings, reporter);
  const checks: Check[] = [];
  try {
    const started = performance.now();
    if (settings.remoteWrite) checks.push(...(await (await import('../backends/remote-write/doctor.js')).remoteWriteChecks(settings, reporter)));
    else try {
      const version = await gateway.version();
      checks.push({ ok: true, what: `gateway ${gateway.displayUrl('')} answers, version ${version ?? 'unknown'} (${Math.round(performance.now() - started)} ms)` });
    } catch (error) {
      checks.push({ ok: false, what: (error as Error).message, fix: 'start the Pushgateway or fix --pushgateway / DEPLOYCTL_PUSHGATEWAY_URL' });
    }

    try {
      await mkdir(settings.stateDir, { recursive: true, mode: 0o700 });
      await access(settings.stateDir, constants.W_OK);
      checks.push({ ok: true, what: `state directory ${settings.stateDir} is writable` });
    } catch (error) {
      checks.push({ ok: false, what: `state directory ${settings.stateDir} is not writable: ${(error as NodeJS.ErrnoException).code}`, fix: 'set DEPLOYCTL_STATE_DIR to a writable directory' });
    }
    const { entries, corrupt } = await new Outbox(settings.stateDir).list();
    checks.push(
      entries.length === 0
        ? { ok: true, what: 'the outbox is empty' }
        : { ok: false, what: `${entries.length} record(s) kept in the outbox, not yet on the gateway`, fix: 'deployctl flush' },
    );
    if (corrupt.length) checks.push({ ok: false, what: `${corrupt.length} unreadable outbox file(s) moved to ${corrupt[0]!.movedTo.replace(/\/[^/]+$/, '')}`, fix: 'look at them; deployctl never sends them' });

    const prometheusUrl = flags.prometheus ?? env.DEPLOYCTL_PROMETHEUS_URL;
    if (prometheusUrl && !settings.remoteWrite) checks.push(...(await prometheusChecks(prometheusUrl, gateway.base, settings.timeoutSeconds * 1000)));

    const auth = settings.auth.token ? 'bearer token' : settings.auth.username || gateway.base.username ? `basic (user ${settings.auth.username ?? decodeURIComponent(gateway.base.username)})` : 'none';
    const tls = [settings.tls.ca && 'CA file', settings.tls.cert && 'client certificate', settings.tls.insecure && 'INSECURE'].filter(Boolean).join(', ') || 'system defaults';
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
      wouldPush = (await import('../backends/remote-write/doctor.js')).wouldWrite(settings, now());
    } else if (settings.service !== undefined && settings.environment !== undefined) {
      const applied = applyRecord(new Map(), { kind: 'deployment', id: 'doctor', status: 'success', finishedAt: now(), version: '', commit: '', labels: settings.labels }, now());
      wouldPush = await renderExposition(applied.families.filter((f) => f.name !== 'deployctl_applied_record_timestamp_seconds'));
    }

    const problems = checks.filter((c) => !c.ok).length;
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
      ...checks.flatMap((c) => [`${c.ok ? '✔' : '✖'} ${c.what}`, ...(c.fix ? [`  fix: ${c.fix}`] : [])]),
    ];
    if (wouldPush) lines.push('', `a first record of ${settings.service} in ${settings.environment} would push (deployctl record --dry-run shows the exact text):`, wouldPush.trimEnd());
    reporter.info(lines.join('\n'));
    return problems ? 1 : 0;
  } finally {
    gateway.close();
  }
}
