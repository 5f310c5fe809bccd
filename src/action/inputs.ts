/**
 * The GitHub Action's inputs and GitHub's environment, turned into a `deployctl record` command
 * line. Pure: the runner adapter (main.ts) reads the environment and writes the outputs.
 */
export type Env = Record<string, string | undefined>;

export interface ActionPlan {
  /** The deployctl command line; undefined when there is nothing to record (a skipped job). */
  argv?: string[];
  /** Variables deployctl reads besides its flags: the gateway URL, which may carry a password. */
  env: Record<string, string>;
  /** Values to hide from the log (`::add-mask::`) before anything else is printed. */
  secrets: string[];
  /** Why nothing is recorded, or a problem with the inputs, for a notice or a warning. */
  problem?: string;
  strict: boolean;
  /** The status recorded, as deployctl spells it. */
  status?: string;
  /**
   * Neither the `pushgateway` nor the `remote-write` input, nor DEPLOYCTL_PUSHGATEWAY_URL or
   * DEPLOYCTL_REMOTE_WRITE_URL, names where to record: the runner checks the config file, and
   * refuses rather than record to localhost (a hosted runner is gone after the job).
   */
  noTarget?: boolean;
}

/** The name of the state the pre step keeps for main (GITHUB_STATE; main reads it as STATE_<name>). */
export const STARTED_STATE = 'deployctl_started_at';

/** Saved by the pre step when it marked the deployment in progress (deployctl start on this runner). */
export const MARKED_STATE = 'deployctl_marked';

/** Why nothing is recorded without a target, as the `::error::` annotation says it. */
export const NO_TARGET =
  'the `pushgateway` input is empty or missing (an undefined secret?), and no `remote-write` input, DEPLOYCTL_PUSHGATEWAY_URL, DEPLOYCTL_REMOTE_WRITE_URL or config file names a target: nothing was recorded. Give `pushgateway: ${{ secrets.PUSHGATEWAY_URL }}` (or `remote-write:`) and make sure the secret is defined';

/** An input as the runner passes it: INPUT_ and the name in capitals, spaces as underscores. */
function input(env: Env, name: string): string {
  return (env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] ?? '').trim();
}

const TRUE = new Set(['true', 'yes', '1', 'on']);

/** `job.status` and friends, as deployctl's statuses. */
export function mapStatus(value: string): 'success' | 'failure' | 'cancelled' | 'skipped' | undefined {
  switch (value.toLowerCase()) {
    case 'success':
    case 'succeeded':
      return 'success';
    case 'failure':
    case 'failed':
      return 'failure';
    case 'cancelled':
    case 'canceled':
      return 'cancelled';
    case 'skipped':
      return 'skipped';
    default:
      return undefined;
  }
}

/** `key=value` pairs, one per line or separated by commas. */
export function parseLabels(value: string): string[] {
  return value
    .split(/[\n,]/)
    .map((pair) => pair.trim())
    .filter(Boolean);
}

/** The password in a URL's user part, as written and decoded, so that neither form reaches the log. */
export function urlSecrets(url: string): string[] {
  try {
    const parsed = new URL(url);
    if (!parsed.password) return [];
    let decoded = parsed.password;
    try {
      decoded = decodeURIComponent(parsed.password);
    } catch {
      // a stray % : the password is used as written
    }
    return [...new Set([parsed.password, decoded])];
  } catch {
    return [];
  }
}

/** The run's page, as GitHub shows it. */
export function runUrl(env: Env): string | undefined {
  const {
    GITHUB_SERVER_URL: server,
    GITHUB_REPOSITORY: repository,
    GITHUB_RUN_ID: runId,
    GITHUB_RUN_ATTEMPT: attempt,
  } = env;
  if (!server || !repository || !runId) return undefined;
  return `${server}/${repository}/actions/runs/${runId}${attempt && attempt !== '1' ? `/attempts/${attempt}` : ''}`;
}

export function planAction(env: Env): ActionPlan {
  const strict = TRUE.has(input(env, 'strict').toLowerCase());
  const plan: ActionPlan = { env: {}, secrets: [], strict };
  const pushgateway = input(env, 'pushgateway');
  const remoteWrite = input(env, 'remote-write');
  if (pushgateway) plan.env.DEPLOYCTL_PUSHGATEWAY_URL = pushgateway;
  plan.secrets = [
    ...urlSecrets(pushgateway || (env.DEPLOYCTL_PUSHGATEWAY_URL ?? '')),
    ...urlSecrets(remoteWrite || (env.DEPLOYCTL_REMOTE_WRITE_URL ?? '')),
    ...urlSecrets(input(env, 'prometheus') || (env.DEPLOYCTL_PROMETHEUS_URL ?? '')),
    ...['DEPLOYCTL_PUSHGATEWAY_PASSWORD', 'DEPLOYCTL_PUSHGATEWAY_TOKEN'].map((name) => env[name] ?? '').filter(Boolean),
  ];

  const rawStatus = input(env, 'status');
  const status = mapStatus(rawStatus);
  if (!rawStatus)
    return { ...plan, problem: 'the status input is empty: give it `status: ${{ job.status }}`; nothing was recorded' };
  if (!status)
    return {
      ...plan,
      problem: `the status input is ${JSON.stringify(rawStatus)}, not success, failure or cancelled; nothing was recorded`,
    };
  if (status === 'skipped') return { ...plan, problem: 'the job was skipped: no deployment to record' };

  // After the pre step's `deployctl start`, `finish` closes it, and forgets the start it kept on this runner.
  const argv = [env[`STATE_${MARKED_STATE}`] === 'true' ? 'finish' : 'record', '--json', '--status', status];
  const add = (flag: string, value: string | undefined) => {
    if (value) argv.push(flag, value);
  };
  // The start: the `started-at` input, else the job's start as the pre step kept it.
  add('--started-at', input(env, 'started-at') || env[`STATE_${STARTED_STATE}`]?.trim());
  add('--service', input(env, 'service'));
  add('--env', input(env, 'environment'));
  add('--version', input(env, 'version'));
  add('--commit', input(env, 'commit') || env.GITHUB_SHA);
  // A pull request's GITHUB_REF_NAME is "123/merge": the branch is its head.
  add('--branch', env.GITHUB_HEAD_REF || (env.GITHUB_REF_TYPE === 'branch' ? env.GITHUB_REF_NAME : undefined));
  add('--repository', env.GITHUB_REPOSITORY);
  add('--build-url', runUrl(env));
  add('--timeout', input(env, 'timeout'));
  for (const label of parseLabels(input(env, 'labels'))) argv.push('--label', label);
  if (remoteWrite) argv.push('--remote-write', remoteWrite);
  add('--prometheus', input(env, 'prometheus'));
  if (strict) argv.push('--strict');
  const noTarget = !targetGiven(env, pushgateway, remoteWrite);
  return { ...plan, argv, status, ...(noTarget && { noTarget }) };
}

function targetGiven(env: Env, pushgateway: string, remoteWrite: string): boolean {
  return Boolean(
    pushgateway || remoteWrite || env.DEPLOYCTL_PUSHGATEWAY_URL?.trim() || env.DEPLOYCTL_REMOTE_WRITE_URL?.trim(),
  );
}

/**
 * The pre step (runs.pre, at the job's start): `deployctl start`, which marks the deployment in
 * progress, when the inputs name the service, the environment and the target (the config file is
 * not checked out yet). Undefined when they do not: the start time is kept all the same.
 */
export function planStart(env: Env, startedAt: number): ActionPlan | undefined {
  const plan = planAction({
    ...env,
    INPUT_STATUS: 'success',
    [`STATE_${STARTED_STATE}`]: undefined,
    [`STATE_${MARKED_STATE}`]: undefined,
  });
  const service = input(env, 'service') || env.DEPLOYCTL_SERVICE?.trim();
  const environment = input(env, 'environment') || env.DEPLOYCTL_ENV?.trim();
  if (!plan.argv || plan.noTarget || !service || !environment) return undefined;
  const argv = ['start', '--started-at', String(startedAt)];
  const add = (flag: string, value: string | undefined) => {
    if (value) argv.push(flag, value);
  };
  add('--service', input(env, 'service'));
  add('--env', input(env, 'environment'));
  add('--timeout', input(env, 'timeout'));
  for (const label of parseLabels(input(env, 'labels'))) argv.push('--label', label);
  const remoteWrite = input(env, 'remote-write');
  if (remoteWrite) argv.push('--remote-write', remoteWrite);
  add('--prometheus', input(env, 'prometheus'));
  return { ...plan, argv, strict: false };
}

/** What `record --json` printed, as the action's outputs. */
export function outputsFrom(
  result: Record<string, unknown> | undefined,
  status: string | undefined,
): Record<string, string> {
  const totals = (result?.totals ?? {}) as Record<string, number>;
  const count = (s: string) => (typeof totals[s] === 'number' ? String(totals[s]) : '');
  const all = ['success', 'failure', 'cancelled']
    .map((s) => totals[s])
    .filter((n): n is number => typeof n === 'number');
  return {
    status: status ?? '',
    recorded: String(result?.recorded === true),
    'success-total': count('success'),
    'failure-total': count('failure'),
    'cancelled-total': count('cancelled'),
    'deployments-total': all.length ? String(all.reduce((a, b) => a + b, 0)) : '',
    'duration-seconds': typeof result?.durationSeconds === 'number' ? String(result.durationSeconds) : '',
    json: result ? JSON.stringify(result) : '',
  };
}
