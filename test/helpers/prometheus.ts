import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, type RunningServer } from './pushgateway.js';

export interface RunningPrometheus extends RunningServer {
  query(expr: string, time?: number): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
}

/**
 * Starts a real Prometheus on a free 127.0.0.1 port that scrapes the gateway every second with
 * honor_labels (unless told otherwise) and evaluates the given rule files every second.
 */
export async function startPrometheus(
  dir: string,
  gatewayUrl: string,
  ruleFiles: string[] = [],
  { alertmanager, honorLabels = true }: { alertmanager?: string; honorLabels?: boolean } = {},
): Promise<RunningPrometheus> {
  const port = await freePort();
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      ruleFiles.length ? `rule_files:\n${ruleFiles.map((f) => `  - ${f}`).join('\n')}` : '',
      alertmanager ? `alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['${new URL(alertmanager).host}']` : '',
      'scrape_configs:',
      '  - job_name: pushgateway',
      `    honor_labels: ${honorLabels}`,
      '    static_configs:',
      `      - targets: ['${new URL(gatewayUrl).host}']`,
      '',
    ].join('\n'),
  );
  const child = spawn(
    process.env.PROMETHEUS_BIN ?? 'prometheus',
    [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited: ${stderr}`);
    try {
      if ((await fetch(`${url}/-/ready`)).ok) break;
    } catch {
      // starting
    }
    if (Date.now() > until) throw new Error(`prometheus did not become ready: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    port,
    process: child,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
    async query(expr, time) {
      const params = new URLSearchParams({ query: expr, ...(time !== undefined && { time: String(time) }) });
      const response = await fetch(`${url}/api/v1/query?${params}`);
      const body = (await response.json()) as { status: string; error?: string; data: { resultType: string; result: unknown } };
      if (body.status !== 'success') throw new Error(`query ${expr} failed: ${body.error}`);
      if (body.data.resultType === 'scalar') return [{ metric: {}, value: body.data.result as [number, string] }];
      return body.data.result as { metric: Record<string, string>; value: [number, string] }[];
    },
  };
}

/** Waits until a query returns what `ready` accepts (Prometheus scrapes every second). */
export async function eventually<T>(get: () => Promise<T>, ready: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let value = await get();
  while (!ready(value) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 250));
    value = await get();
  }
  return value;
}
