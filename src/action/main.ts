// The GitHub Action (action.yml): records the job's deployment with `deployctl record`.
// Built into the committed single file action/index.mjs (npm run build:action), which the runner
// starts with its own node from a plain checkout: nothing is installed.
// The recorder never changes the outcome of a deploy: the step fails only with `strict: true`.
import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { basename } from 'node:path';
import { main } from '../cli/cli.js';
import { resolveSettings, targetNamed } from '../cli/settings.js';
import { type Env, MARKED_STATE, NO_TARGET, outputsFrom, planAction, planStart, STARTED_STATE } from './inputs.js';

const escapeData = (text: string) => text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
const command = (name: string, message: string) => process.stdout.write(`::${name}::${escapeData(message)}\n`);

function setOutputs(env: Env, outputs: Record<string, string>): void {
  if (!env.GITHUB_OUTPUT) return;
  const lines = Object.entries(outputs).map(([name, value]) => {
    if (!/[\r\n]/.test(value)) return `${name}=${value}\n`;
    const delimiter = `deployctl_${randomUUID()}`;
    return `${name}<<${delimiter}\n${value}\n${delimiter}\n`;
  });
  appendFileSync(env.GITHUB_OUTPUT, lines.join(''));
}

function saveState(env: Env, name: string, value: string): void {
  if (env.GITHUB_STATE) appendFileSync(env.GITHUB_STATE, `${name}=${value}\n`);
}

/** A config file in the workspace that names a target (the inputs and the environment do not). */
async function configNamesTarget(env: Env, cwd: string): Promise<boolean> {
  try {
    return targetNamed(await resolveSettings({}, env, cwd));
  } catch {
    // A config file that cannot be read names nothing here; record says why.
    return false;
  }
}

/** Runs `deployctl record --json` in this process and keeps the JSON document it prints. */
async function record(
  argv: string[],
  env: Env,
  cwd: string,
): Promise<{ exitCode: number; result?: Record<string, unknown> }> {
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
    return true;
  }) as typeof process.stdout.write;
  let exitCode: number;
  // Nothing deployctl prints meanwhile (it may quote a server's answer) is read as a workflow
  // command: the runner ignores them until the token, which nobody else knows, resumes them.
  const token = `deployctl-${randomUUID()}`;
  write(`::stop-commands::${token}\n`);
  try {
    exitCode = await main(argv, { env, cwd });
  } finally {
    process.stdout.write = write;
    write(`::${token}::\n`);
  }
  const text = chunks.join('').trim();
  try {
    return { exitCode, result: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
  } catch {
    if (text) process.stdout.write(`${text}\n`);
    return { exitCode };
  }
}

async function run(env: Env): Promise<number> {
  const plan = planAction(env);
  for (const secret of plan.secrets) command('add-mask', secret);
  const fail = (message: string) => {
    command(plan.strict ? 'error' : 'warning', `deployctl: ${message}`);
    return plan.strict ? 1 : 0;
  };
  if (!plan.argv) {
    setOutputs(env, outputsFrom(undefined, undefined));
    if (plan.problem?.startsWith('the job was skipped')) {
      command('notice', `deployctl: ${plan.problem}`);
      return 0;
    }
    return fail(plan.problem ?? 'nothing to record');
  }
  const { status } = plan;
  const cwd = env.GITHUB_WORKSPACE || process.cwd();
  if (plan.noTarget && !(await configNamesTarget(env, cwd))) {
    // Recording to localhost on a runner that is thrown away after the job would lose the record.
    setOutputs(env, outputsFrom(undefined, status));
    command('error', `deployctl: ${NO_TARGET}`);
    return plan.strict ? 1 : 0;
  }
  try {
    const { exitCode, result } = await record(plan.argv, { ...env, ...plan.env }, cwd);
    setOutputs(env, outputsFrom(result, status));
    if (result?.recorded === true) {
      const totals = Object.entries((result.totals ?? {}) as Record<string, number>)
        .map(([s, n]) => `${s} ${n}`)
        .join(', ');
      const duration = typeof result.durationSeconds === 'number' ? ` (${result.durationSeconds} s)` : '';
      const line = `recorded ${status} of ${String(result.service)} in ${String(result.environment)}${duration}${totals ? `; deployments now: ${totals}` : ''}`;
      process.stdout.write(`deployctl: ${line}\n`);
      if (env.GITHUB_STEP_SUMMARY) appendFileSync(env.GITHUB_STEP_SUMMARY, `deployctl: ${line}\n`);
    }
    if (exitCode !== 0) return fail(`record exited with ${exitCode}; see the lines above`);
    if (result?.recorded !== true && result?.duplicate !== true) {
      // Kept for later: recording it is deployctl's job, not a reason to fail the deploy.
      command(
        'warning',
        'deployctl: the deployment is not on the gateway yet (see the lines above); it is kept and sent by the next deployctl command on this machine',
      );
    }
    return 0;
  } catch (error) {
    setOutputs(env, outputsFrom(undefined, status));
    return fail(`could not record the deployment: ${(error as Error).message}`);
  }
}

/**
 * The pre step (runs.pre), at the job's start: keeps the start time for main and marks the
 * deployment in progress when the inputs say where. Never fails the job.
 */
async function pre(env: Env): Promise<number> {
  const startedAt = Math.floor(Date.now() / 1000);
  saveState(env, STARTED_STATE, String(startedAt));
  const plan = planStart(env, startedAt);
  if (!plan?.argv) {
    process.stdout.write(
      `deployctl: the job started at ${new Date(startedAt * 1000).toISOString()}; not marked in progress (the inputs do not name the service, environment and target)\n`,
    );
    return 0;
  }
  for (const secret of plan.secrets) command('add-mask', secret);
  try {
    const exitCode = await main(plan.argv, {
      env: { ...env, ...plan.env },
      cwd: env.GITHUB_WORKSPACE || process.cwd(),
    });
    if (exitCode === 0) saveState(env, MARKED_STATE, 'true');
    if (exitCode !== 0)
      command(
        'warning',
        `deployctl: could not mark the deployment in progress (start exited with ${exitCode}); its duration is recorded all the same`,
      );
  } catch (error) {
    command('warning', `deployctl: could not mark the deployment in progress: ${(error as Error).message}`);
  }
  return 0;
}

// runs.pre is action/pre.mjs, which loads this same file.
process.exitCode = basename(process.argv[1] ?? '') === 'pre.mjs' ? await pre(process.env) : await run(process.env);
