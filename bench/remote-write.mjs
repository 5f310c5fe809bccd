// npm run bench:remote-write: what one `deployctl record --remote-write` costs with 10 and with
// 10,000 other groups (60 deployments each) in the store, on Debian's VictoriaMetrics and
// Prometheus started on 127.0.0.1. Medians of several runs; the table is printed and written as JSON.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'bin/deployctl');
const reps = Number(process.env.BENCH_REPS ?? 15);
const work = mkdtempSync(join(tmpdir(), 'deployctl-bench-rw-'));
const now = Math.floor(Date.now() / 1000);
const DEPLOYMENTS = 60;

function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitReady(url, child) {
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`${url}: the server exited`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not become ready`);
}

function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', resolve);
    child.kill('SIGTERM');
  });
}

/** The ledger of `groups` groups with DEPLOYMENTS deployments each over the last 30 days, as text lines (timestamps in `unit`). */
function ledgerText(groups, unit) {
  const lines = [];
  for (let g = 0; g < groups; g++) {
    for (let d = 0; d < DEPLOYMENTS; d++) {
      const t = now - 30 * 86_400 + d * 40_000 + g;
      const stamp = unit === 'ms' ? t * 1000 : t;
      const group = `job="deployctl",service="seed-${g}",environment="prod"`;
      lines.push(`deployctl_deployment_finished_timestamp_seconds{${group},status="success"} ${t} ${stamp}`);
      lines.push(`deployctl_deployment_version_finished_timestamp_seconds{${group},status="success",version="v${d}",commit="c${d}"} ${t} ${stamp}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

async function victoriaMetrics(groups) {
  const port = await freePort();
  const dir = join(work, `vm-${groups}`);
  const child = spawn('victoria-metrics', [`-httpListenAddr=127.0.0.1:${port}`, `-storageDataPath=${dir}`, '-retentionPeriod=100y', '-dedup.minScrapeInterval=1ms', '-loggerLevel=ERROR'], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(`${url}/health`, child);
  const response = await fetch(`${url}/api/v1/import/prometheus`, { method: 'POST', body: ledgerText(groups, 'ms') });
  if (!response.ok) throw new Error(`import: HTTP ${response.status}`);
  await fetch(`${url}/internal/force_flush`);
  return { name: 'VictoriaMetrics', url, child };
}

async function prometheus(groups) {
  const port = await freePort();
  const dir = join(work, `prometheus-${groups}`);
  mkdirSync(dir, { recursive: true });
  const data = join(dir, 'openmetrics.txt');
  writeFileSync(data, `${ledgerText(groups, 's')}# EOF\n`);
  const blocks = spawnSync('promtool', ['tsdb', 'create-blocks-from', 'openmetrics', data, join(dir, 'tsdb')], { encoding: 'utf8' });
  if (blocks.status !== 0) throw new Error(`promtool: ${blocks.stderr}`);
  const config = join(dir, 'prometheus.yml');
  writeFileSync(config, 'storage:\n  tsdb:\n    out_of_order_time_window: 30d\n');
  const child = spawn(
    'prometheus',
    [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, '--storage.tsdb.retention.time=100y', '--web.enable-remote-write-receiver', `--web.listen-address=127.0.0.1:${port}`, '--log.level=error'],
    { stdio: 'ignore' },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitReady(`${url}/-/ready`, child);
  return { name: 'Prometheus', url, child };
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** Median wall time of `deployctl record` to one group of the store, in ms. */
function recordCost(store) {
  const samples = [];
  for (let i = 0; i <= reps; i++) {
    const env = { PATH: process.env.PATH, HOME: work, DEPLOYCTL_STATE_DIR: join(work, `state-${store.name}-${i}`), DEPLOYCTL_REMOTE_WRITE_URL: `${store.url}/api/v1/write`, DEPLOYCTL_TIMEOUT: '60' };
    const args = [bin, 'record', '-s', 'bench-target', '-e', 'prod', '--status', 'success', '--commit', `b${i}`, '--commit-time', String(now - 600), '--finished-at', String(now - 300 + i), '-q'];
    const started = process.hrtime.bigint();
    const result = spawnSync(process.execPath, args, { cwd: work, env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (result.status !== 0 || result.stderr) throw new Error(`record failed: ${result.stderr}`);
    if (i > 0) samples.push(ms); // the first run warms the compile cache
  }
  return median(samples);
}

const results = [];
const targets = [];
try {
  for (const start of [victoriaMetrics, prometheus]) {
    const cost = {};
    for (const groups of [10, 10_000]) {
      const store = await start(groups);
      try {
        cost[groups] = recordCost(store);
        results.push({ name: `${store.name}: deployctl record with ${groups} other groups (${groups * DEPLOYMENTS} deployments)`, ms: Number(cost[groups].toFixed(1)) });
      } finally {
        await stop(store.child);
      }
    }
    const ratio = cost[10_000] / cost[10];
    targets.push({ target: `${start === victoriaMetrics ? 'VictoriaMetrics' : 'Prometheus'}: record with 10,000 groups ≤ 1.3× with 10`, ratio, limit: 1.3, met: ratio <= 1.3 });
  }
  const lines = [
    '',
    `| measurement (median of ${reps}) | ms |`,
    '| --- | ---: |',
    ...results.map((r) => `| ${r.name} | ${r.ms} |`),
    '',
    '| target | measured | met |',
    '| --- | ---: | :---: |',
    ...targets.map((t) => `| ${t.target} | ${t.ratio.toFixed(2)}× | ${t.met ? 'yes' : 'NO'} |`),
  ];
  console.log(lines.join('\n'));
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout.trim();
  const file = join(root, 'bench/results', `remote-write-${new Date().toISOString().replace(/[:.]/g, '-')}-${git || 'unknown'}.json`);
  writeFileSync(file, `${JSON.stringify({ commit: git, node: process.version, reps, results, targets }, null, 2)}\n`);
  console.log(`\nwritten to ${file}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
