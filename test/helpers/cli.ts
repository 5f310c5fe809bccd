import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type Options } from 'execa';
import { parseExposition, type Sample } from './exposition.js';

export const BIN = fileURLToPath(new URL('../../bin/deployctl', import.meta.url));

/** HOME for every spawned deployctl of this test file, so that state never lands in the real one. */
const home = mkdtempSync(join(tmpdir(), 'deployctl-home-'));
process.on('exit', () => rmSync(home, { recursive: true, force: true }));

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
    env: { PATH: process.env.PATH ?? '', HOME: home, NO_COLOR: '1', ...env },
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

/** Everything the gateway serves on /metrics, parsed. */
export async function scrape(gatewayUrl: string): Promise<Sample[]> {
  const response = await fetch(`${gatewayUrl}/metrics`);
  return parseExposition(await response.text());
}

/** Whether the gateway holds any group with this service label. */
export async function hasGroup(gatewayUrl: string, service: string): Promise<boolean> {
  const response = await fetch(`${gatewayUrl}/api/v1/metrics`);
  const body = (await response.json()) as { data: { labels: Record<string, string> }[] };
  return body.data.some((group) => group.labels.service === service);
}
