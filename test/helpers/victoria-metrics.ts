import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { querier } from './prometheus.js';
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
  /** Makes every sample taken so far visible to queries (Prometheus shows them at once). */
  flush(): Promise<void>;
  /** An instant query, of everything taken so far; `time` in Unix seconds. */
  query(expr: string, time?: number): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
}

/**
 * Debian's VictoriaMetrics on a free 127.0.0.1 port: deduplication at 1 ms (so that a retried
 * sample counts once; `dedup` gives another interval, null none), no query cache and no latency
 * offset (tests read right after writing). It shows new samples to queries only after it has
 * flushed them (within seconds): `flush()` (/internal/force_flush) does that at once, and every
 * `query()` of the test flushes first.
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
  const flush = async () => {
    const response = await fetch(`${url}/internal/force_flush`);
    if (!response.ok) throw new Error(`victoria-metrics did not flush: HTTP ${response.status}`);
    await response.arrayBuffer();
  };
  return {
    ...server,
    name: 'victoria-metrics',
    writeUrl: `${url}/api/v1/write`,
    flush,
    query: querier(url, { flush, extra: { nocache: '1' } }),
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
  const scheme = webConfigFile ? 'https' : 'http';
  const server = await startServer(
    'prometheus',
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
    port,
    // Behind TLS and credentials, the test reads through deployctl only: it waits for the port.
    webConfigFile ? undefined : `http://127.0.0.1:${port}/-/ready`,
  );
  const url = `${scheme}://127.0.0.1:${port}`;
  return {
    ...server,
    name: 'prometheus',
    url,
    writeUrl: `${url}/api/v1/write`,
    flush: async () => undefined,
    query: querier(url),
  };
}

export const RECEIVERS = {
  prometheus: (dir: string) => startPrometheusReceiver(dir),
  'victoria-metrics': (dir: string) => startVictoriaMetrics(dir),
} as const;
