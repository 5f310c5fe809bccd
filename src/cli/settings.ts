import { readFileSync, statSync } from 'node:fs';
import {
  type EndpointAuth,
  type EndpointTls,
  parseEndpointUrl,
  redactUrl,
  trustOnly,
} from '../adapters/http-endpoint.js';
import { ciEnvironment } from '../adapters/metadata/ci.js';
import type { Destination } from '../backends/backend.js';
import { SettingsError, UsageError } from '../core/errors.js';
import { DEFAULT_INCIDENT_LABELS, type IncidentLabelNames, parseAlertLabelName } from '../core/incident.js';
import {
  parseAttributionWindow,
  parseLabelName,
  parseLabels,
  parseLabelValue,
  parseSeconds,
} from '../core/validate.js';
import { defaultStateDir } from '../recorder/state-dir.js';
import { stateDirProblem, throwawayStateDir } from '../recorder/trust.js';
import { loadConfig } from './config/load.js';
import type { FileConfig } from './config/schema.js';

const DEFAULT_PUSHGATEWAY = 'http://localhost:9091';
const DEFAULT_JOB = 'deployctl';
const DEFAULT_TIMEOUT_SECONDS = 5;

/** The options every command takes, as commander hands them over. */
export interface GlobalFlags {
  pushgateway?: string;
  remoteWrite?: string;
  prometheus?: string;
  job?: string;
  config?: string;
  dryRun?: boolean;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  strict?: boolean;
  timeout?: string;
  service?: string;
  env?: string;
  /** The same as --env, as the config file spells it. */
  environment?: string;
  label?: string[];
  header?: string[];
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  insecure?: boolean;
}

export type Source = 'flag' | 'environment' | 'config' | 'default';

export interface Settings {
  pushgateway: string;
  /** Prometheus remote-write endpoint: when set, records go there instead of the gateway. */
  remoteWrite: string | undefined;
  /** The store's (or Prometheus's) query API. */
  prometheus: string | undefined;
  job: string;
  service: string | undefined;
  environment: string | undefined;
  timeoutSeconds: number;
  strict: boolean;
  dryRun: boolean;
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  labels: Record<string, string>;
  /** The alert labels that name an alert's service and environment (incident --from-alertmanager). */
  incidentLabels: IncidentLabelNames;
  /** `incident.attributionWindow` of the config file, in seconds (incident open). */
  incidentAttributionWindow: number | undefined;
  /** Where state between invocations is kept on this machine (start/finish, the outbox). */
  stateDir: string;
  auth: EndpointAuth;
  /**
   * What a query of --prometheus carries: on remote-write the store's credentials and headers (its
   * query API is the same store and tenant); on the gateway nothing but the URL's own user and password.
   */
  queryAuth: EndpointAuth;
  /**
   * The TLS of a query (verify's Prometheus and Alertmanager): on remote-write the store's own; on
   * the gateway the CA to trust and --insecure, not the gateway's client certificate.
   */
  queryTls: EndpointTls;
  tls: EndpointTls;
  configFile: string | undefined;
  /** Problems that do not stop anything (an unknown config key, a secret file others can read). */
  warnings: string[];
  /** The config file's `verify` section, as the schema checked it (verify reads and checks the rest). */
  verify: NonNullable<FileConfig['verify']>;
  /** Where each resolved value came from, for `doctor` and --verbose. */
  sources: Record<'pushgateway' | 'job' | 'service' | 'environment' | 'timeout' | 'strict', Source>;
}

type Env = Record<string, string | undefined>;

/** Where this configuration sends records and reads them back: the one place that picks the backend. */
export function destinationOf(settings: Settings): Destination {
  const [backend, url] = settings.remoteWrite
    ? (['remote-write', settings.remoteWrite] as const)
    : (['pushgateway', settings.pushgateway] as const);
  return {
    target: { backend, url: redactUrl(url, { dropCredentials: true }) },
    url,
    prometheus: settings.prometheus,
    auth: settings.auth,
    tls: settings.tls,
    stateDir: settings.stateDir,
    timeoutSeconds: settings.timeoutSeconds,
  };
}

function pick<T>(flag: T | undefined, env: T | undefined, config: T | undefined, fallback: T): [T, Source] {
  if (flag !== undefined) return [flag, 'flag'];
  if (env !== undefined) return [env, 'environment'];
  if (config !== undefined) return [config, 'config'];
  return [fallback, 'default'];
}

function envValue(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

function envBoolean(env: Env, name: string): boolean | undefined {
  const value = envValue(env, name);
  if (value === undefined) return undefined;
  if (/^(1|true|yes)$/i.test(value)) return true;
  if (/^(0|false|no)$/i.test(value)) return false;
  throw new SettingsError(`${name} must be true or false, not ${JSON.stringify(value)}`);
}

/**
 * Runs a check of a value; a problem with a value from the command line is a usage error, one
 * from the environment or the config file a SettingsError (it must not stop a deploy).
 */
function bySource<T>(source: Source, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (source !== 'flag' && error instanceof UsageError && !(error instanceof SettingsError))
      throw new SettingsError(error.message, error.hint);
    throw error;
  }
}

/** Checks every value given on the command line, before anything from the surroundings is read. */
function checkGlobalFlags(flags: GlobalFlags): void {
  if (flags.pushgateway !== undefined) parseEndpointUrl(flags.pushgateway, '--pushgateway');
  if (flags.remoteWrite !== undefined) parseEndpointUrl(flags.remoteWrite, '--remote-write');
  if (flags.prometheus !== undefined) parseEndpointUrl(flags.prometheus, '--prometheus');
  if (flags.job !== undefined) parseLabelValue('--job', flags.job);
  if (flags.service !== undefined) parseLabelValue('--service', flags.service);
  if (flags.env !== undefined) parseLabelValue('--env', flags.env);
  if (flags.timeout !== undefined) positiveSeconds('--timeout', flags.timeout);
  parseLabels(flags.label ?? []);
  parseHeaderFlags(flags.header ?? []);
  if ((flags.certFile === undefined) !== (flags.keyFile === undefined) && !(flags.certFile && flags.keyFile)) {
    throw new UsageError('a client certificate needs both --cert-file and --key-file');
  }
}

/** Flags > environment > config file > defaults, each value validated where it came from. */
export async function resolveSettings(flags: GlobalFlags, env: Env, cwd: string): Promise<Settings> {
  checkGlobalFlags(flags);
  const {
    config,
    filepath,
    warnings,
    unknownKeys = [],
  } = await loadConfig(flags.config ?? envValue(env, 'DEPLOYCTL_CONFIG'), cwd);
  const fromFile = (key: string) => (filepath ? `${key} in ${filepath}` : key);

  const [pushgateway, pushgatewaySource] = pick(
    flags.pushgateway,
    envValue(env, 'DEPLOYCTL_PUSHGATEWAY_URL'),
    config.pushgateway,
    DEFAULT_PUSHGATEWAY,
  );
  bySource(pushgatewaySource, () =>
    parseEndpointUrl(
      pushgateway,
      {
        flag: '--pushgateway',
        environment: 'DEPLOYCTL_PUSHGATEWAY_URL',
        config: fromFile('pushgateway'),
        default: 'the default gateway',
      }[pushgatewaySource],
    ),
  );

  const [remoteWrite, remoteWriteSource] = pick(
    flags.remoteWrite,
    envValue(env, 'DEPLOYCTL_REMOTE_WRITE_URL'),
    config.remoteWrite,
    undefined,
  );
  if (remoteWrite !== undefined) {
    bySource(remoteWriteSource, () =>
      parseEndpointUrl(
        remoteWrite,
        {
          flag: '--remote-write',
          environment: 'DEPLOYCTL_REMOTE_WRITE_URL',
          config: fromFile('remoteWrite'),
          default: '',
        }[remoteWriteSource],
      ),
    );
  }
  // An unknown key that looks meant to name the target (a typo of pushgateway or remoteWrite, a
  // `gateway` or `url` of some other tool) leaves the default target in place: say so.
  const unknownTopKeys = unknownKeys
    .filter(
      ({ key, suggestion }) =>
        !key.includes('.') &&
        (suggestion === 'pushgateway' || suggestion === 'remoteWrite' || /gateway|url|remote|write|target/i.test(key)),
    )
    .map(({ key }) => key);
  if (pushgatewaySource === 'default' && remoteWrite === undefined && unknownTopKeys.length > 0)
    warnings.push(
      `no pushgateway or remoteWrite is set, so records go to the default ${DEFAULT_PUSHGATEWAY}: ${unknownTopKeys.join(', ')} in ${filepath} ${unknownTopKeys.length === 1 ? 'was' : 'were'} not recognised`,
    );
  const [prometheus, prometheusSource] = pick(
    flags.prometheus,
    envValue(env, 'DEPLOYCTL_PROMETHEUS_URL'),
    config.prometheus,
    undefined,
  );
  if (prometheus !== undefined) {
    bySource(prometheusSource, () =>
      parseEndpointUrl(
        prometheus,
        { flag: '--prometheus', environment: 'DEPLOYCTL_PROMETHEUS_URL', config: fromFile('prometheus'), default: '' }[
          prometheusSource
        ],
      ),
    );
  }

  const [job, jobSource] = pick(flags.job, envValue(env, 'DEPLOYCTL_JOB'), config.job, DEFAULT_JOB);
  bySource(jobSource, () =>
    parseLabelValue(
      { flag: '--job', environment: 'DEPLOYCTL_JOB', config: fromFile('job'), default: 'job' }[jobSource],
      job,
    ),
  );

  const [service, serviceSource] = pick(flags.service, envValue(env, 'DEPLOYCTL_SERVICE'), config.service, undefined);
  if (service !== undefined) {
    bySource(serviceSource, () =>
      parseLabelValue(
        { flag: '--service', environment: 'DEPLOYCTL_SERVICE', config: fromFile('service'), default: 'service' }[
          serviceSource
        ],
        service,
      ),
    );
  }
  const [environment, environmentSource] = pick(
    flags.env,
    envValue(env, 'DEPLOYCTL_ENV'),
    config.environment,
    ciEnvironment(env),
  );
  if (environment !== undefined) {
    bySource(environmentSource, () =>
      parseLabelValue(
        {
          flag: '--env',
          environment: 'DEPLOYCTL_ENV',
          config: fromFile('environment'),
          default: 'CI_ENVIRONMENT_NAME',
        }[environmentSource],
        environment,
      ),
    );
  }

  const timeoutFlag = flags.timeout === undefined ? undefined : positiveSeconds('--timeout', flags.timeout);
  const timeoutEnv = envValue(env, 'DEPLOYCTL_TIMEOUT');
  const [timeoutSeconds, timeoutSource] = pick(
    timeoutFlag,
    timeoutEnv === undefined
      ? undefined
      : bySource('environment', () => positiveSeconds('DEPLOYCTL_TIMEOUT', timeoutEnv)),
    config.timeout,
    DEFAULT_TIMEOUT_SECONDS,
  );

  const [strict, strictSource] = pick(
    flags.strict || undefined,
    envBoolean(env, 'DEPLOYCTL_STRICT'),
    config.strict,
    false,
  );

  const labels: Record<string, string> = {};
  for (const [name, value] of Object.entries(config.labels ?? {})) {
    bySource('config', () => {
      labels[parseLabelName(name, fromFile(`labels.${name}`))] = parseLabelValue(fromFile(`labels.${name}`), value, {
        allowEmpty: true,
      });
    });
  }
  Object.assign(labels, parseLabels(flags.label ?? []));

  const incidentLabels: IncidentLabelNames = {
    service: bySource('config', () =>
      parseAlertLabelName(
        fromFile('incident.serviceLabel'),
        config.incident?.serviceLabel ?? DEFAULT_INCIDENT_LABELS.service,
      ),
    ),
    environment: bySource('config', () =>
      parseAlertLabelName(
        fromFile('incident.environmentLabel'),
        config.incident?.environmentLabel ?? DEFAULT_INCIDENT_LABELS.environment,
      ),
    ),
  };

  const incidentAttributionWindow = bySource('config', () =>
    config.incident?.attributionWindow === undefined
      ? undefined
      : parseAttributionWindow(fromFile('incident.attributionWindow'), config.incident.attributionWindow),
  );

  let stateDir = envValue(env, 'DEPLOYCTL_STATE_DIR') ?? config.stateDir ?? defaultStateDir(env);
  const secrets = { warnings: [...warnings] };
  const stateProblem = stateDirProblem(stateDir);
  if (stateProblem) {
    secrets.warnings.push(
      `state directory not used: ${stateProblem}; records are sent straight out, and one that cannot be sent is not kept`,
    );
    stateDir = throwawayStateDir();
  }
  const auth = await resolveAuth(flags, env, config, fromFile, secrets);
  const tls = await resolveTls(flags, env, config, fromFile, secrets);

  return {
    pushgateway,
    remoteWrite,
    prometheus,
    job,
    service,
    environment,
    timeoutSeconds,
    strict,
    dryRun: flags.dryRun ?? false,
    json: flags.json ?? false,
    quiet: flags.quiet ?? false,
    verbose: flags.verbose ?? false,
    labels,
    incidentLabels,
    incidentAttributionWindow,
    stateDir,
    auth,
    queryAuth: remoteWrite === undefined ? {} : auth,
    queryTls: remoteWrite === undefined ? trustOnly(tls) : tls,
    tls,
    configFile: filepath,
    verify: config.verify ?? {},
    warnings: secrets.warnings,
    sources: {
      pushgateway: pushgatewaySource,
      job: jobSource,
      service: serviceSource,
      environment: environmentSource,
      timeout: timeoutSource,
      strict: strictSource,
    },
  };
}

async function readFileSetting(what: string, path: string): Promise<string> {
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new SettingsError(
      `${what}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

/** A password, token or key file: read, with a warning when others than its owner may read it. */
async function readSecretFile(what: string, path: string, found: { warnings: string[] }): Promise<string> {
  const content = await readFileSetting(what, path);
  let mode = 0;
  try {
    mode = statSync(path).mode;
  } catch {
    // read a moment ago: gone since, nothing to warn about
  }
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    found.warnings.push(
      `${what}: ${path} can be read by ${mode & 0o007 ? 'every user' : 'its group'} (mode ${(mode & 0o777).toString(8)}); make it private with chmod 600 ${path}`,
    );
  }
  return content;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function checkHeader(where: string, name: string, value: string): void {
  if (!HEADER_NAME.test(name))
    throw new UsageError(`${where}: ${JSON.stringify(name)} is not a valid HTTP header name`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value))
    throw new UsageError(`${where}: the value of header ${name} contains a control character`);
  if (/[^\u0000-\u00ff]/.test(value))
    throw new UsageError(
      `${where}: the value of header ${name} has characters HTTP headers cannot carry (beyond Latin-1)`,
    );
}

/** `--header "Name: value"`, checked; values are never shown. */
function parseHeaderFlags(headers: string[]): Record<string, string> {
  const parsed: Record<string, string> = {};
  for (const header of headers) {
    const colon = header.indexOf(':');
    if (colon <= 0) throw new UsageError('--header must have the form "Name: value"');
    const name = header.slice(0, colon).trim();
    const value = header.slice(colon + 1).trim();
    checkHeader('--header', name, value);
    parsed[name] = value;
  }
  return parsed;
}

/** Credentials: environment over config file (never flags, which other users can see in `ps`). */
async function resolveAuth(
  flags: GlobalFlags,
  env: Env,
  config: FileConfig,
  fromFile: (key: string) => string,
  found: { warnings: string[] },
): Promise<EndpointAuth> {
  const auth: EndpointAuth = {};
  const username = envValue(env, 'DEPLOYCTL_PUSHGATEWAY_USERNAME') ?? config.auth?.username;
  const password =
    envValue(env, 'DEPLOYCTL_PUSHGATEWAY_PASSWORD') ??
    (config.auth?.passwordFile
      ? await readSecretFile(fromFile('auth.passwordFile'), config.auth.passwordFile, found)
      : config.auth?.password);
  const token =
    envValue(env, 'DEPLOYCTL_PUSHGATEWAY_TOKEN') ??
    (config.auth?.tokenFile
      ? await readSecretFile(fromFile('auth.tokenFile'), config.auth.tokenFile, found)
      : config.auth?.token);
  if (username !== undefined) auth.username = username;
  if (password !== undefined) auth.password = password;
  if (token !== undefined) {
    if (/[\s]/.test(token)) throw new SettingsError('the gateway token contains white space or a line break');
    if (/[^\u0000-\u00ff]/.test(token))
      throw new SettingsError('the gateway token has characters an HTTP header cannot carry (beyond Latin-1)');
    auth.token = token;
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(config.headers ?? {})) {
    bySource('config', () => checkHeader(fromFile(`headers.${name}`), name, value));
    headers[name] = value;
  }
  Object.assign(headers, parseHeaderFlags(flags.header ?? []));
  if (Object.keys(headers).length > 0) auth.headers = headers;
  return auth;
}

async function resolveTls(
  flags: GlobalFlags,
  env: Env,
  config: FileConfig,
  fromFile: (key: string) => string,
  found: { warnings: string[] },
): Promise<EndpointTls> {
  const tls: EndpointTls = {};
  const file = async (
    flag: string | undefined,
    flagName: string,
    envName: string,
    configValue: string | undefined,
    configKey: string,
    secret = false,
  ) => {
    const read = (what: string, path: string) =>
      secret ? readSecretFile(what, path, found) : readFileSetting(what, path);
    if (flag !== undefined) return read(flagName, flag);
    const fromEnv = envValue(env, envName);
    if (fromEnv !== undefined) return read(envName, fromEnv);
    if (configValue !== undefined) return read(fromFile(configKey), configValue);
    return undefined;
  };
  const ca = await file(flags.caFile, '--ca-file', 'DEPLOYCTL_CA_FILE', config.tls?.caFile, 'tls.caFile');
  const cert = await file(flags.certFile, '--cert-file', 'DEPLOYCTL_CERT_FILE', config.tls?.certFile, 'tls.certFile');
  const key = await file(flags.keyFile, '--key-file', 'DEPLOYCTL_KEY_FILE', config.tls?.keyFile, 'tls.keyFile', true);
  if ((cert === undefined) !== (key === undefined))
    throw new SettingsError(
      'a client certificate needs both a certificate and a key file (--cert-file and --key-file)',
    );
  if (ca !== undefined) tls.ca = ca;
  if (cert !== undefined) tls.cert = cert;
  if (key !== undefined) tls.key = key;
  const insecure = flags.insecure || envBoolean(env, 'DEPLOYCTL_INSECURE') || config.tls?.insecure;
  if (insecure) tls.insecure = true;
  return tls;
}

function positiveSeconds(what: string, value: string): number {
  const seconds = parseSeconds(what, value);
  if (seconds <= 0 || seconds > 600)
    throw new UsageError(`${what} must be more than 0 and at most 600 seconds, not ${value}`);
  return seconds;
}

/** Service and environment are required by every command that records. */
export function requireTarget(settings: Settings): { service: string; environment: string } {
  if (settings.service === undefined) {
    throw new SettingsError('no service given', 'use --service, DEPLOYCTL_SERVICE or "service" in the config file');
  }
  if (settings.environment === undefined) {
    throw new SettingsError('no environment given', 'use --env, DEPLOYCTL_ENV or "environment" in the config file');
  }
  return { service: settings.service, environment: settings.environment };
}

/** Whether a flag, the environment or the config file names the target (not the default gateway). */
export function targetNamed(settings: Settings): boolean {
  return settings.remoteWrite !== undefined || settings.sources.pushgateway !== 'default';
}
