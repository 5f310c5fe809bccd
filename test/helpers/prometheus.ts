import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { freePort, type RunningServer, startServer } from './pushgateway.js';

export interface RunningPrometheus extends RunningServer {
  query(expr: string, time?: number): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
}

const EXAMPLE = new URL('../../examples/prometheus/prometheus.yml', import.meta.url);

/**
 * The scrape job of examples/prometheus/prometheus.yml (honor_labels, the gateway's address as a
 * label, deployctl's bookkeeping dropped) for these gateways, as the tests run it.
 */
function exampleScrapeJob(gatewayUrls: string[], { honorLabels = true } = {}): Record<string, unknown> {
  const example = parse(readFileSync(EXAMPLE, 'utf8')) as { scrape_configs: Record<string, unknown>[] };
  const job = example.scrape_configs.find((j) => j.job_name === 'pushgateway');
  if (!job) throw new Error('examples/prometheus/prometheus.yml has no pushgateway scrape job');
  return {
    ...job,
    honor_labels: honorLabels,
    static_configs: [{ targets: gatewayUrls.map((url) => new URL(url).host) }],
  };
}

/**
 * Starts a real Prometheus on a free 127.0.0.1 port that scrapes the gateway (or gateways) every
 * second with the example's scrape job (honor_labels unless told otherwise) and evaluates the given
 * rule files every second.
 */
export async function startPrometheus(
  dir: string,
  gatewayUrl: string | string[],
  ruleFiles: string[] = [],
  {
    alertmanager,
    honorLabels = true,
    unhonoredGateways = [],
  }: {
    alertmanager?: string;
    honorLabels?: boolean;
    /** Gateways scraped by a second job without honor_labels (a generic scrape job, as many setups have). */
    unhonoredGateways?: string[];
  } = {},
): Promise<RunningPrometheus> {
  const port = await freePort();
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      ...(ruleFiles.length && { rule_files: ruleFiles }),
      ...(alertmanager && {
        alerting: { alertmanagers: [{ static_configs: [{ targets: [new URL(alertmanager).host] }] }] },
      }),
      scrape_configs: [
        exampleScrapeJob([gatewayUrl].flat(), { honorLabels }),
        ...(unhonoredGateways.length
          ? [{ ...exampleScrapeJob(unhonoredGateways, { honorLabels: false }), job_name: 'generic' }]
          : []),
      ],
    }),
  );
  const server = await startServer(
    'prometheus',
    process.env.PROMETHEUS_BIN ?? 'prometheus',
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    port,
    `http://127.0.0.1:${port}/-/ready`,
  );
  return { ...server, query: querier(server.url) };
}

/**
 * Instant queries of the Prometheus API at `base` (a scalar comes back as one sample without
 * labels); `flush` runs before each, `extra` goes with each as parameters.
 */
export function querier(
  base: string,
  { flush, extra = {} }: { flush?: () => Promise<void>; extra?: Record<string, string> } = {},
) {
  return async (expr: string, time?: number) => {
    await flush?.();
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

/** Waits until a query returns what `ready` accepts (Prometheus scrapes every second). */
export async function eventually<T>(
  get: () => Promise<T>,
  ready: (value: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let value = await get();
  while (!ready(value) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 250));
    value = await get();
  }
  return value;
}
