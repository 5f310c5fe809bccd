import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type Options } from 'execa';
import { parseExposition, type Sample, select } from './exposition.js';

export const BIN = fileURLToPath(new URL('../../bin/deployctl', import.meta.url));

/** HOME for every spawned deployctl of this test file, so that state never lands in the real one. */
const home = mkdtempSync(join(tmpdir(), 'deployctl-home-'));
process.on('exit', () => rmSync(home, { recursive: true, force: true }));

/**
 * The scrubbed environment deployctl runs with in these tests: only PATH from outside, a HOME of
 * this test file's own, no colors, and `vars` (which may name another HOME).
 */
export function cliEnv(vars: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: home, NO_COLOR: '1', ...vars };
}

/** The variables that point deployctl at a gateway and give it a state directory of its own. */
export function gatewayEnv(gatewayUrl: string, stateDir: string, vars: Record<string, string> = {}) {
  return { DEPLOYCTL_PUSHGATEWAY_URL: gatewayUrl, DEPLOYCTL_STATE_DIR: stateDir, ...vars };
}

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built binary with a scrubbed environment: only PATH and HOME from outside,
 * no CI variables, no colors, and whatever the test passes.
 */
export async function deployctl(
  args: string[],
  {
    env = {},
    cwd,
    input,
    timeout = 20_000,
  }: { env?: Record<string, string>; cwd?: string; input?: string; timeout?: number } = {},
): Promise<CliResult> {
  const options: Options = {
    env: cliEnv(env),
    extendEnv: false,
    reject: false,
    timeout,
    stripFinalNewline: false,
    ...(cwd && { cwd }),
    ...(input !== undefined && { input }),
  };
  const result = await execa(process.execPath, [BIN, ...args], options);
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** deployctl started in the background, to be signalled or killed; what it says on stderr is kept. */
export function startDeployctl(
  args: string[],
  { env = {}, cwd }: { env?: Record<string, string>; cwd?: string } = {},
): { child: ChildProcess; exited: Promise<number | null>; stderr(): string } {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: cliEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cwd && { cwd }),
  });
  let stderr = '';
  child.stdout!.resume();
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, stderr: () => stderr };
}

/** Everything the gateway serves on /metrics, parsed; `init` carries credentials where it asks for them. */
export async function scrape(gatewayUrl: string, init: RequestInit = {}): Promise<Sample[]> {
  const response = await fetch(`${gatewayUrl}/metrics`, init);
  return parseExposition(await response.text());
}

/** The one sample of `name` whose labels include `labels`: undefined when there is none, NaN when there are several. */
export async function gatewaySample(
  gatewayUrl: string,
  name: string,
  labels: Record<string, string>,
  init: RequestInit = {},
): Promise<number | undefined> {
  const found = select(await scrape(gatewayUrl, init), name, labels);
  return found.length === 0 ? undefined : found.length === 1 ? found[0]!.value : NaN;
}

/**
 * deployctl_deployments_total of one service and status on the gateway: 0 when it holds none,
 * NaN when it holds several (in more than one environment or group).
 */
export async function deployments(
  gatewayUrl: string,
  service: string,
  status = 'success',
  init: RequestInit = {},
): Promise<number> {
  return (await gatewaySample(gatewayUrl, 'deployctl_deployments_total', { service, status }, init)) ?? 0;
}

/** The records kept in a state directory's outbox (their file names); none when there is no outbox. */
export function keptRecords(stateDir: string): string[] {
  try {
    return readdirSync(join(stateDir, 'outbox')).filter((name) => name.endsWith('.json'));
  } catch {
    return [];
  }
}

/** Whether the gateway holds any group with this service label. */
export async function hasGroup(gatewayUrl: string, service: string): Promise<boolean> {
  const response = await fetch(`${gatewayUrl}/api/v1/metrics`);
  const body = (await response.json()) as { data: { labels: Record<string, string> }[] };
  return body.data.some((group) => group.labels.service === service);
}
