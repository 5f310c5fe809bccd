import { access, constants, mkdir } from 'node:fs/promises';
import { redactUrl } from '../../adapters/http-endpoint.js';
import type { BackendReader, Check, GroupStatus } from '../../backends/backend.js';
import { openReader } from '../../backends/index.js';
import { Outbox } from '../../recorder/outbox.js';
import type { CommandContext } from '../context.js';
import type { Source } from '../settings.js';

declare const __DEPLOYCTL_VERSION__: string;

/** A resolved setting and where it came from. */
interface Sourced<T> {
  value: T;
  from: Source;
}

export interface DoctorView {
  kind: 'doctor';
  config: {
    version: string;
    node: string;
    configFile: string | null;
    pushgateway: Sourced<string>;
    job: Sourced<string>;
    service: Sourced<string | null>;
    environment: Sourced<string | null>;
    timeoutSeconds: Sourced<number>;
    strict: Sourced<boolean>;
    stateDir: string;
    auth: string;
    headers: string[];
    tls: string;
  };
  checks: Check[];
  /** What a first record of the configured service and environment would send. */
  wouldPush: string | null;
  /** Failed checks that are not only warnings. */
  problems: number;
  service: string | undefined;
  environment: string | undefined;
}

/** The state directory can be written, and what its outbox keeps. */
async function stateChecks(stateDir: string, dryRun: boolean): Promise<Check[]> {
  const checks: Check[] = [];
  try {
    if (!dryRun) await mkdir(stateDir, { recursive: true, mode: 0o700 });
    await access(stateDir, constants.W_OK);
    checks.push({ ok: true, what: `state directory ${stateDir} is writable` });
  } catch (error) {
    checks.push({
      ok: false,
      what: `state directory ${stateDir} is not writable: ${(error as NodeJS.ErrnoException).code}`,
      fix: 'set DEPLOYCTL_STATE_DIR to a writable directory',
    });
  }
  const { entries, quarantined } = await new Outbox(stateDir).list({ leaveInPlace: true });
  checks.push(
    entries.length === 0
      ? { ok: true, what: 'the outbox is empty' }
      : {
          ok: false,
          what: `${entries.length} record(s) kept in the outbox, not yet delivered`,
          fix: 'deployctl flush (deployctl flush --dry-run lists them)',
        },
  );
  const held = (await new Outbox(stateDir).list({ leaveInPlace: true, held: true })).entries;
  const heldByUrl = new Map<string, string>();
  for (const entry of held) heldByUrl.set(entry.kept.target.url, entry.kept.held?.reason ?? 'refused for good');
  for (const [url, reason] of heldByUrl) {
    const count = held.filter((e) => e.kept.target.url === url).length;
    checks.push({
      ok: false,
      what: `${count} record(s) kept for ${url} were refused for good (${reason}) and wait for a decision; flush does not retry them`,
      fix: `deployctl outbox move --from ${url} --to <the right URL>, then deployctl flush; or deployctl outbox drop --target ${url} (deployctl outbox list shows them)`,
    });
  }
  if (quarantined.length)
    checks.push({
      ok: false,
      what: `${quarantined.length} file(s) in the outbox are not records deployctl can send`,
      fix: 'look at them; deployctl never sends them and moves them to outbox/quarantine/',
    });
  return checks;
}

/** A deployment in progress for longer than this is likely one a killed `run` or `start` left open. */
const STUCK_AFTER_SECONDS = 3_600;

/**
 * Deployments marked in progress for more than STUCK_AFTER_SECONDS: a `run` killed with SIGKILL
 * (or a `start` whose `finish` never came) leaves deployctl_deployment_in_progress at 1 for good.
 * Each is named with since when and how to close it; nothing is changed. A store that cannot be
 * read here says so in the backend's own checks.
 */
async function stuckChecks(
  reader: BackendReader,
  settings: Pick<CommandContext['settings'], 'job' | 'service' | 'environment'>,
  now: number,
): Promise<Check[]> {
  let groups: GroupStatus[];
  try {
    ({ groups } = await reader.status({
      job: settings.job,
      service: settings.service,
      environment: settings.environment,
    }));
  } catch {
    return [];
  }
  return groups
    .filter((g) => g.inProgress && g.startedAt !== null && now - g.startedAt > STUCK_AFTER_SECONDS)
    .map((g) => ({
      ok: false,
      warning: true,
      what: `${g.service} in ${g.environment} has been in progress since ${new Date(g.startedAt! * 1000).toISOString()} (${((now - g.startedAt!) / 3600).toFixed(1)} h): if no deploy of it is running, a killed run or a start without finish left it open`,
      fix: `deployctl finish --status cancelled -s ${g.service} -e ${g.environment}${g.job === 'deployctl' ? '' : ` --job ${g.job}`}`,
    }));
}

/** `deployctl doctor`: the resolved configuration, the backend's checks, this machine's state, and what a record would send. */
export async function doctorCommand({ settings, destination, reporter, now }: CommandContext): Promise<DoctorView> {
  const reader = await openReader(destination, reporter);
  try {
    const checks = [
      ...(await reader.doctor(settings.job)).checks,
      ...(await stuckChecks(reader, settings, now())),
      ...(await stateChecks(settings.stateDir, settings.dryRun)),
    ];
    const auth = settings.auth.token
      ? 'bearer token'
      : settings.auth.username || new URL(destination.url).username
        ? `basic (user ${settings.auth.username ?? decodeURIComponent(new URL(destination.url).username)})`
        : 'none';
    const tls =
      [settings.tls.ca && 'CA file', settings.tls.cert && 'client certificate', settings.tls.insecure && 'INSECURE']
        .filter(Boolean)
        .join(', ') || 'system defaults';
    const wouldPush =
      settings.service !== undefined && settings.environment !== undefined
        ? await reader.wouldRecord(
            { job: settings.job, service: settings.service, environment: settings.environment },
            settings.labels,
            now(),
          )
        : null;
    return {
      kind: 'doctor',
      config: {
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
      },
      checks,
      wouldPush,
      problems: checks.filter((c) => !c.ok && !c.warning).length,
      service: settings.service,
      environment: settings.environment,
    };
  } finally {
    reader.close();
  }
}
