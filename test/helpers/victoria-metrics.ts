import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { freePort, startServer } from './pushgateway.js';

/** A real remote-write receiver with a Prometheus query API on the same port. */
export interface RunningReceiver {
  name: 'prometheus' | 'victoria-metrics';
  /** Base of the query API. */
  url: string;
  /** The remote-write endpoint. */
  writeUrl: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
  /** An instant query; `time` in Unix seconds. */
  query(expr: string, time?: number): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
}

async function waitReady(url: string, child: ChildProcess, stderr: () => string, what: string): Promise<void> {
  const until = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited: ${stderr()}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // starting
    }
    if (Date.now() > until) throw new Error(`${what} did not become ready: ${stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function waitForPort(port: number, child: ChildProcess, stderr: () => string): Promise<void> {
  const until = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited: ${stderr()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > until) throw new Error(`prometheus did not listen: ${stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
}

function querier(base: string, extra: Record<string, string> = {}) {
  return async (expr: string, time?: number) => {
    const params = new URLSearchParams({ query: expr, ...extra, ...(time !== undefined && { time: String(time) }) });
    const response = await fetch(`${base}/api/v1/query?${params}`);
    const body = (await response.json()) as {
      status: string;
      error?: string;
      data: { resultType: string; result: unknown };
    };
    if (body.status !== 'success') throw new Error(`query ${expr} failed: ${body.error}`);
    if (body.data.resultType === 'scalar') return [{ metric: {}, value: body.data.result as [number, string] }];
    return body.data.result as { metric: Record<string, string>; value: [number, string] }[];
  };
}

/**
 * Debian's VictoriaMetrics on a free 127.0.0.1 port: deduplication at 1 ms (so that a retried
 * sample counts once; `dedup` gives another interval, null none), no query cache and no latency
 * offset (tests read right after writing).
 */
export async function startVictoriaMetrics(
  dir: string,
  { dedup = '1ms' }: { dedup?: string | null } = {},
): Promise<RunningReceiver> {
  const port = await freePort();
  const data = join(dir, 'victoria-metrics');
  mkdirSync(data, { recursive: true });
  const url = `http://127.0.0.1:${port}`;
  const server = await startServer(
    'victoria-metrics',
    process.env.VICTORIA_METRICS_BIN ?? 'victoria-metrics',
    [
      `-httpListenAddr=127.0.0.1:${port}`,
      `-storageDataPath=${data}`,
      '-retentionPeriod=100y',
      ...(dedup === null ? [] : [`-dedup.minScrapeInterval=${dedup}`]),
      '-search.latencyOffset=0s',
      '-search.disableCache',
      '-loggerLevel=ERROR',
    ],
    port,
    `${url}/health`,
  );
  return {
    ...server,
    name: 'victoria-metrics',
    writeUrl: `${url}/api/v1/write`,
    query: querier(url, { nocache: '1' }),
  };
}

/**
 * Debian's Prometheus as a remote-write receiver on a free 127.0.0.1 port, with an out-of-order
 * window of 400 days (unless told otherwise) so that backfilled and concurrent records are taken.
 */
export async function startPrometheusReceiver(
  dir: string,
  {
    outOfOrderWindow = '400d',
    webConfigFile,
    ruleFiles = [],
  }: { outOfOrderWindow?: string | null; webConfigFile?: string; ruleFiles?: string[] } = {},
): Promise<RunningReceiver> {
  const port = await freePort();
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'prometheus-receiver.yml');
  const storage = outOfOrderWindow ? ['storage:', '  tsdb:', `    out_of_order_time_window: ${outOfOrderWindow}`] : [];
  // Rule files, when given, are evaluated every second.
  const rules = ruleFiles.length
    ? ['  evaluation_interval: 1s', 'rule_files:', ...ruleFiles.map((f) => `  - ${f}`)]
    : [];
  writeFileSync(config, ['global:', '  scrape_interval: 1m', ...rules, ...storage, ''].join('\n'));
  const child = spawn(
    process.env.PROMETHEUS_BIN ?? 'prometheus',
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'prometheus-receiver-tsdb')}`,
      '--storage.tsdb.retention.time=100y',
      '--web.enable-remote-write-receiver',
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
      ...(webConfigFile ? [`--web.config.file=${webConfigFile}`] : []),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const url = `${webConfigFile ? 'https' : 'http'}://127.0.0.1:${port}`;
  // Behind TLS and credentials, the test reads through deployctl only: wait for the port.
  if (webConfigFile) await waitForPort(port, child, () => stderr);
  else await waitReady(`${url}/-/ready`, child, () => stderr, 'prometheus');
  return {
    name: 'prometheus',
    url,
    writeUrl: `${url}/api/v1/write`,
    port,
    process: child,
    stop: stopper(child),
    query: querier(url),
  };
}

export const RECEIVERS = {
  prometheus: (dir: string) => startPrometheusReceiver(dir),
  'victoria-metrics': (dir: string) => startVictoriaMetrics(dir),
} as const;
