import { UsageError } from './errors.js';
import { loadConfig } from './config/load.js';
import { defaultStateDir } from './state-dir.js';
import { parseGatewayUrl, redactUrl } from './gateway/client.js';
import { parseLabelName, parseLabelValue, parseLabels, parseSeconds } from './validate.js';

export const DEFAULT_PUSHGATEWAY = 'http://localhost:9091';
export const DEFAULT_JOB = 'deployctl';
export const DEFAULT_TIMEOUT_SECONDS = 5;

/** The options every command takes, as commander hands them over. */
export interface GlobalFlags {
  pushgateway?: string;
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
  label?: string[];
}

export type Source = 'flag' | 'environment' | 'config' | 'default';

export interface Settings {
  pushgateway: string;
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
  /** Where state between invocations is kept on this machine (start/finish, the outbox). */
  stateDir: string;
  configFile: string | undefined;
  /** Where each resolved value came from, for `doctor` and --verbose. */
  sources: Record<'pushgateway' | 'job' | 'service' | 'environment' | 'timeout' | 'strict', Source>;
}

type Env = Record<string, string | undefined>;

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
  throw new UsageError(`${name} must be true or false, not ${JSON.stringify(value)}`);
}

/** Flags > environment > config file > defaults, each value validated where it came from. */
export async function resolveSettings(flags: GlobalFlags, env: Env, cwd: string): Promise<Settings> {
  const { config, filepath } = await loadConfig(flags.config ?? envValue(env, 'DEPLOYCTL_CONFIG'), cwd);
  const fromFile = (key: string) => (filepath ? `${key} in ${filepath}` : key);

  const [pushgateway, pushgatewaySource] = pick(flags.pushgateway, envValue(env, 'DEPLOYCTL_PUSHGATEWAY_URL'), config.pushgateway, DEFAULT_PUSHGATEWAY);
  parseGatewayUrl(pushgateway, { flag: '--pushgateway', environment: 'DEPLOYCTL_PUSHGATEWAY_URL', config: fromFile('pushgateway'), default: 'the default gateway' }[pushgatewaySource]);

  const [job, jobSource] = pick(flags.job, envValue(env, 'DEPLOYCTL_JOB'), config.job, DEFAULT_JOB);
  parseLabelValue({ flag: '--job', environment: 'DEPLOYCTL_JOB', config: fromFile('job'), default: 'job' }[jobSource], job);

  const [service, serviceSource] = pick(flags.service, envValue(env, 'DEPLOYCTL_SERVICE'), config.service, undefined);
  if (service !== undefined) {
    parseLabelValue({ flag: '--service', environment: 'DEPLOYCTL_SERVICE', config: fromFile('service'), default: 'service' }[serviceSource], service);
  }
  const [environment, environmentSource] = pick(flags.env, envValue(env, 'DEPLOYCTL_ENV'), config.environment, undefined);
  if (environment !== undefined) {
    parseLabelValue({ flag: '--env', environment: 'DEPLOYCTL_ENV', config: fromFile('environment'), default: 'environment' }[environmentSource], environment);
  }

  const timeoutFlag = flags.timeout === undefined ? undefined : positiveSeconds('--timeout', flags.timeout);
  const timeoutEnv = envValue(env, 'DEPLOYCTL_TIMEOUT');
  const [timeoutSeconds, timeoutSource] = pick(
    timeoutFlag,
    timeoutEnv === undefined ? undefined : positiveSeconds('DEPLOYCTL_TIMEOUT', timeoutEnv),
    config.timeout,
    DEFAULT_TIMEOUT_SECONDS,
  );

  const [strict, strictSource] = pick(flags.strict || undefined, envBoolean(env, 'DEPLOYCTL_STRICT'), config.strict, false);

  const labels: Record<string, string> = {};
  for (const [name, value] of Object.entries(config.labels ?? {})) {
    labels[parseLabelName(name, fromFile(`labels.${name}`))] = parseLabelValue(fromFile(`labels.${name}`), value, { allowEmpty: true });
  }
  Object.assign(labels, parseLabels(flags.label ?? []));

  const stateDir = envValue(env, 'DEPLOYCTL_STATE_DIR') ?? config.stateDir ?? defaultStateDir(env);

  return {
    pushgateway,
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
    stateDir,
    configFile: filepath,
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

function positiveSeconds(what: string, value: string): number {
  const seconds = parseSeconds(what, value);
  if (seconds <= 0 || seconds > 600) throw new UsageError(`${what} must be more than 0 and at most 600 seconds, not ${value}`);
  return seconds;
}

/** Service and environment are required by every command that records. */
export function requireTarget(settings: Settings): { service: string; environment: string } {
  if (settings.service === undefined) {
    throw new UsageError('no service given', 'use --service, DEPLOYCTL_SERVICE or "service" in the config file');
  }
  if (settings.environment === undefined) {
    throw new UsageError('no environment given', 'use --env, DEPLOYCTL_ENV or "environment" in the config file');
  }
  return { service: settings.service, environment: settings.environment };
}

export function describeGateway(settings: Settings): string {
  return redactUrl(settings.pushgateway);
}
