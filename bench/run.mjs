// npm run bench: deployctl side by side with the floor of each measurement (issue 13), on real
// servers started on 127.0.0.1. Runs alternate A B A B ... so a drift of the machine's speed
// hits both sides; each side is given as median (min–max) of its runs, the ratio is median A /
// median B. Prints the table, writes it as JSON (bench/results.json or --json PATH).
//
//   node bench/run.mjs [--json PATH]      measure (BENCH_RUNS=N runs per side, BENCH_ROWS=1,2,4 to pick rows)
//   node bench/run.mjs --readme [PATH]    rewrite the performance table in docs/performance.md from the JSON, measure nothing
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { side, summaryLine, tableLines, withTable } from './report.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'bin/deployctl');
const cache = join(root, 'bench/.cache');
const tableFile = join(root, 'docs/performance.md');

const argv = process.argv.slice(2);
const option = (name) => {
  const at = argv.indexOf(name);
  return at === -1 ? undefined : argv[at + 1] && !argv[at + 1].startsWith('--') ? argv[at + 1] : true;
};
const jsonFile = resolve(typeof option('--json') === 'string' ? option('--json') : join(root, 'bench/results.json'));

// ---------------------------------------------------------------------------------------------
// Servers: each on a free 127.0.0.1 port, each killed by its pid at the end, on error and on a signal.

const servers = new Set();

function freePort() {
  return new Promise((done, fail) => {
    const server = net
      .createServer()
      .on('error', fail)
      .listen(0, '127.0.0.1', () => {
        const { port } = server.address();
        server.close(() => done(port));
      });
  });
}

function startServer(command, args, readyPath, port) {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-2000);
  });
  servers.add(child);
  child.once('exit', () => servers.delete(child));
  const url = `http://127.0.0.1:${port}`;
  return (async () => {
    for (let i = 0; i < 300; i++) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${command} exited: ${stderr.trim()}`);
      try {
        if ((await fetch(`${url}${readyPath}`)).ok) return { url, child };
      } catch {}
      await sleep(100);
    }
    child.kill('SIGKILL');
    throw new Error(`${command} was not ready within 30 s`);
  })();
}

function stopServer(server, timeoutMs = 30_000) {
  const { child } = server;
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      done();
    });
    child.kill('SIGTERM');
  });
}

function killAllServers() {
  for (const child of [...running, ...servers]) child.kill('SIGKILL');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startGateway(args = []) {
  const port = await freePort();
  // Debian's gateway persists to /var/lib/prometheus/pushgateway.data unless told otherwise: every
  // bench gateway would then start with what the last one held. Memory only, unless a row gives a file.
  const memoryOnly = args.some((a) => a.startsWith('--persistence.file')) ? [] : ['--persistence.file='];
  return startServer(
    'prometheus-pushgateway',
    [`--web.listen-address=127.0.0.1:${port}`, '--log.level=error', ...memoryOnly, ...args],
    '/-/ready',
    port,
  );
}

/** A group shaped as deployctl leaves one (~25 series): what the filler groups hold and what the floor scripts push. */
function groupBody(i) {
  const buckets = [1, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200]
    .map((le) => `deployctl_deployment_duration_seconds_bucket{status="success",le="${le}"} ${le >= 60 ? 3 : 0}`)
    .join('\n');
  return `# TYPE deployctl_deployments_total counter
deployctl_deployments_total{status="success"} 3
deployctl_deployments_total{status="failure"} 1
deployctl_deployments_total{status="cancelled"} 0
# TYPE deployctl_deployment_duration_seconds histogram
${buckets}
deployctl_deployment_duration_seconds_bucket{status="success",le="+Inf"} 3
deployctl_deployment_duration_seconds_sum{status="success"} 420
deployctl_deployment_duration_seconds_count{status="success"} 3
# TYPE deployctl_last_deployment_timestamp_seconds gauge
deployctl_last_deployment_timestamp_seconds 1767225600
# TYPE deployctl_last_success_timestamp_seconds gauge
deployctl_last_success_timestamp_seconds 1767225600
# TYPE deployctl_deployment_info gauge
deployctl_deployment_info{version="1.${i}.0",commit="abc${i}",status="success"} 1
`;
}
const GROUP_SHAPE = 'v1'; // change when groupBody changes: the cached gateway files are then filled again

/** PUTs groups [from, to) as job deployctl, service filler-i, environment prod, 8 requests in flight. */
async function fillGateway(url, from, to) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  let next = from;
  const worker = async () => {
    while (next < to) {
      const i = next++;
      const body = groupBody(i);
      await new Promise((done, fail) => {
        const request = http.request(
          `${url}/metrics/job/deployctl/service/filler-${i}/environment/prod`,
          { method: 'PUT', agent, headers: { 'content-length': Buffer.byteLength(body) } },
          (response) => {
            response.resume();
            response.on('end', () =>
              response.statusCode === 200 || response.statusCode === 202
                ? done()
                : fail(new Error(`PUT filler-${i}: HTTP ${response.statusCode}`)),
            );
          },
        );
        request.setTimeout(30_000, () => request.destroy(new Error(`PUT filler-${i}: no answer in 30 s`)));
        request.on('error', fail);
        request.end(body);
      });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  agent.destroy();
}

async function groupCount(url) {
  const body = await (await fetch(`${url}/api/v1/metrics`)).json();
  return body.data.length;
}

/**
 * A normal gateway holding `count` filler groups. Filling through the consistency check takes
 * minutes at 10,000, so they are pushed once to a gateway without the check, which saves them
 * on SIGTERM; that file is kept in bench/.cache and a copy of it is loaded in under a second.
 */
async function gatewayWith(count, work) {
  mkdirSync(cache, { recursive: true });
  const cached = join(cache, `gateway-${count}-${GROUP_SHAPE}.data`);
  if (!existsSync(cached)) {
    console.error(`  filling a gateway with ${count} groups (once; kept in ${cached})`);
    const partial = `${cached}.partial`;
    rmSync(partial, { force: true });
    const filler = await startGateway([
      '--push.disable-consistency-check',
      `--persistence.file=${partial}`,
      '--persistence.interval=1h',
    ]);
    try {
      await fillGateway(filler.url, 0, count);
      // Without the check, pushes are applied after the answer (202): wait until all are there.
      for (let i = 0; i < 150 && (await groupCount(filler.url)) < count; i++) await sleep(200);
    } finally {
      await stopServer(filler);
    }
    renameSync(partial, cached);
  }
  const file = join(work, `gateway-${count}.data`);
  copyFileSync(cached, file);
  const gateway = await startGateway([`--persistence.file=${file}`, '--persistence.interval=1h']);
  const held = await groupCount(gateway.url);
  if (held < count)
    throw new Error(`the gateway loaded ${held} groups from ${cached}, not ${count}: delete that file and run again`);
  return gateway;
}

/** The value of a metric (no labels besides the grouping key) in one group, read from the gateway. */
async function groupValue(url, service, metric) {
  const body = await (await fetch(`${url}/api/v1/metrics`)).json();
  const group = body.data.find((g) => g.labels.service === service && g.labels.environment === 'prod');
  const family = group?.[metric];
  return family ? Number(family.metrics[0].value) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Timing

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/**
 * Every child gets this environment and nothing else: no NODE_EXTRA_CA_CERTS (~75 ms of every
 * Node 20 start here, not deployctl's own cost), no CI variables, no git (the directory is
 * outside any repository), so each contender does the same work.
 */
function childEnv(work, extra) {
  return {
    PATH: process.env.PATH,
    HOME: work,
    TMPDIR: work,
    LANG: 'C.UTF-8',
    DEPLOYCTL_STATE_DIR: join(work, 'state'),
    ...extra,
  };
}

/**
 * Runs a command to its end, its time in ms from the spawn to its exit. Asynchronous, so that a
 * signal to the bench is handled between runs; the child is killed with the bench's servers.
 */
const running = new Set();
function execute(command, args, { cwd, env, timeoutMs = 120_000 }) {
  return new Promise((done, fail) => {
    const started = process.hrtime.bigint();
    let stderr = '';
    let ms;
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
    running.add(child);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stderr.on('data', (chunk) => {
      stderr = (stderr + chunk).slice(-4000);
    });
    child.once('exit', () => {
      ms = Number(process.hrtime.bigint() - started) / 1e6;
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      running.delete(child);
      fail(new Error(`${command}: ${error.message}`));
    });
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      running.delete(child);
      done({ status, signal, stderr: stderr.trim(), ms });
    });
  });
}

/** One run of a contender: `{ label, command, args(i), env(i), quiet }`; wall time in ms. */
async function runOnce(who, i, work) {
  const args = typeof who.args === 'function' ? who.args(i) : who.args;
  const env = typeof who.env === 'function' ? who.env(i) : who.env;
  const result = await execute(who.command, args, { cwd: work, env: childEnv(work, env) });
  if (result.status !== 0)
    throw new Error(`${who.label} exited with ${result.status ?? result.signal}: ${result.stderr}`);
  // deployctl keeps a record and exits 0 when the server fails: a warning means this run did other work.
  if (who.quiet && result.stderr) throw new Error(`${who.label} printed: ${result.stderr}`);
  return result.ms;
}

/** A and B in turn, one warm-up each (compile caches, page cache), then `runs` timed runs each. */
async function sideBySide(a, b, runs, work) {
  await runOnce(a, -1, work);
  await runOnce(b, -1, work);
  const samples = { a: [], b: [] };
  for (let i = 0; i < runs; i++) {
    samples.a.push(await runOnce(a, i, work));
    samples.b.push(await runOnce(b, i, work));
  }
  const stats = (who, values) => ({
    label: who.label,
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
    samples: values.map((v) => Number(v.toFixed(1))),
  });
  const sa = stats(a, samples.a);
  const sb = stats(b, samples.b);
  return { a: sa, b: sb, ratio: sa.median / sb.median };
}

/** Peak resident memory in MB of a run, from GNU time's %M (the kernel's maxrss of the waited child): the largest of `n` runs. */
async function peakMB(who, n, work) {
  let peak = 0;
  for (let i = 0; i < n; i++) {
    const out = join(work, 'time.out');
    const args = typeof who.args === 'function' ? who.args(1000 + i) : who.args;
    const env = typeof who.env === 'function' ? who.env(1000 + i) : who.env;
    const result = await execute('/usr/bin/time', ['-f', '%M', '-o', out, who.command, ...args], {
      cwd: work,
      env: childEnv(work, env),
    });
    if (result.status !== 0)
      throw new Error(
        `${who.label} under /usr/bin/time exited with ${result.status ?? result.signal}: ${result.stderr}`,
      );
    peak = Math.max(peak, Number(readFileSync(out, 'utf8').trim().split('\n').at(-1)) / 1024);
  }
  return peak;
}

// ---------------------------------------------------------------------------------------------
// The floors: the least a Node process can do for the same result.

/** One POST of a group, as plain as Node allows (CommonJS, node:http). argv: URL, body. */
const postScript = `const http = require('node:http');
const [url, body] = process.argv.slice(1);
http.request(url, { method: 'POST', headers: { 'content-length': Buffer.byteLength(body) } }, (res) => {
  res.resume();
  res.on('end', () => { process.exitCode = res.statusCode === 200 ? 0 : 1; });
}).end(body);`;

/**
 * What any client must do to add a record to a group exactly and durably, as plain as Node allows:
 * take this machine's lock on the group (a listening abstract socket), write the record ahead
 * (write, fsync, rename), read every group (GET /api/v1/metrics, parsed), write the group (POST).
 * argv: base, group path, body, state directory.
 */
const lockedReadModifyWriteScript = `const http = require('node:http');
const fs = require('node:fs');
const net = require('node:net');
const [base, path, body, dir] = process.argv.slice(1);
const lock = net.createServer();
lock.listen({ path: '\\0deployctl-bench-floor-' + process.pid, exclusive: true }, () => {
  const file = dir + '/' + process.pid + '.json';
  const fd = fs.openSync(file + '.tmp', 'wx', 0o600);
  fs.writeSync(fd, body);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  http.get(base + '/api/v1/metrics', { agent }, (read) => {
    const chunks = [];
    read.on('data', (chunk) => chunks.push(chunk));
    read.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString());
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fs.renameSync(file + '.tmp', file);
      http.request(base + path, { method: 'POST', agent, headers: { 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on('end', () => {
          fs.unlinkSync(file);
          lock.close();
          agent.destroy();
          process.exitCode = res.statusCode === 200 ? 0 : 1;
        });
      }).end(body);
    });
  });
});`;

/** The same after starting \`true\` and waiting for it: what \`run -- true\` must do at the least. */
const commandThenLockedReadModifyWriteScript = `require('node:child_process').spawn('true', { stdio: 'inherit' }).on('exit', () => {
${lockedReadModifyWriteScript}
});`;

/** The floor of any correct read-modify-write client: one full GET /metrics, read to the end, then one POST. argv: base, group path, body. */
const readModifyWriteScript = `const http = require('node:http');
const [base, path, body] = process.argv.slice(1);
http.get(base + '/metrics', (read) => {
  let bytes = 0;
  read.on('data', (chunk) => { bytes += chunk.length; });
  read.on('end', () => {
    if (read.statusCode !== 200 || bytes === 0) { process.exitCode = 1; return; }
    http.request(base + path, { method: 'POST', headers: { 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => { process.exitCode = res.statusCode === 200 ? 0 : 1; });
    }).end(body);
  });
});`;

// ---------------------------------------------------------------------------------------------
// Remote-write stores for row 6: a ledger of `groups` groups with 60 deployments each.

const DEPLOYMENTS = 60;

function ledgerText(groups, unit, now) {
  const lines = [];
  for (let g = 0; g < groups; g++) {
    for (let d = 0; d < DEPLOYMENTS; d++) {
      const t = now - 30 * 86_400 + d * 40_000 + g;
      const stamp = unit === 'ms' ? t * 1000 : t;
      const group = `job="deployctl",service="seed-${g}",environment="prod"`;
      lines.push(`deployctl_deployment_finished_timestamp_seconds{${group},status="success"} ${t} ${stamp}`);
      lines.push(
        `deployctl_deployment_version_finished_timestamp_seconds{${group},status="success",version="v${d}",commit="c${d}"} ${t} ${stamp}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

const LEDGER_SHAPE = 'v1'; // change when ledgerText changes
const LEDGER_MAX_AGE_DAYS = 7; // the ledger spans the 30 days before its making; a week later it is still inside any 30-day window

/**
 * The data directory of a store holding `groups` groups' ledgers: made once (promtool takes
 * ~90 s for 10,000 groups, a VictoriaMetrics import ~25 s), kept in bench/.cache for a week,
 * and copied for each use, so the records a bench makes never reach the cached data.
 */
async function cachedStoreData(kind, groups, work, make) {
  const dir = join(cache, `${kind}-${groups}-${LEDGER_SHAPE}`);
  const madeAt = join(dir, 'made-at');
  const now = Math.floor(Date.now() / 1000);
  const fresh = existsSync(madeAt) && now - Number(readFileSync(madeAt, 'utf8')) < LEDGER_MAX_AGE_DAYS * 86_400;
  if (!fresh) {
    console.error(`  filling ${kind} with ${groups} groups' ledgers (once a week; kept in ${dir})`);
    rmSync(dir, { recursive: true, force: true });
    const partial = `${dir}.partial`;
    rmSync(partial, { recursive: true, force: true });
    mkdirSync(partial, { recursive: true });
    await make(join(partial, 'data'), now);
    writeFileSync(join(partial, 'made-at'), String(now));
    renameSync(partial, dir);
  }
  const copy = join(work, `${kind}-${groups}`);
  cpSync(join(dir, 'data'), copy, { recursive: true });
  return copy;
}

function victoriaMetricsArgs(port, data) {
  return [
    `-httpListenAddr=127.0.0.1:${port}`,
    `-storageDataPath=${data}`,
    '-retentionPeriod=100y',
    '-dedup.minScrapeInterval=1ms',
    '-loggerLevel=ERROR',
  ];
}

async function victoriaMetrics(groups, work) {
  const data = await cachedStoreData('victoria-metrics', groups, work, async (target, now) => {
    const port = await freePort();
    const filler = await startServer('victoria-metrics', victoriaMetricsArgs(port, target), '/health', port);
    try {
      const response = await fetch(`${filler.url}/api/v1/import/prometheus`, {
        method: 'POST',
        body: ledgerText(groups, 'ms', now),
        signal: AbortSignal.timeout(300_000),
      });
      if (!response.ok) throw new Error(`VictoriaMetrics import: HTTP ${response.status}`);
      await fetch(`${filler.url}/internal/force_flush`);
    } finally {
      await stopServer(filler);
    }
  });
  const port = await freePort();
  return {
    ...(await startServer('victoria-metrics', victoriaMetricsArgs(port, data), '/health', port)),
    name: 'VictoriaMetrics',
  };
}

async function prometheus(groups, work) {
  const data = await cachedStoreData('prometheus', groups, work, async (target, now) => {
    const text = `${target}.txt`;
    writeFileSync(text, `${ledgerText(groups, 's', now)}# EOF\n`);
    const blocks = await execute('promtool', ['tsdb', 'create-blocks-from', 'openmetrics', text, target], {
      cwd: work,
      env: process.env,
      timeoutMs: 600_000,
    });
    rmSync(text);
    if (blocks.status !== 0) throw new Error(`promtool: ${blocks.stderr || blocks.signal}`);
  });
  const port = await freePort();
  const config = join(work, `prometheus-${groups}.yml`);
  writeFileSync(config, 'storage:\n  tsdb:\n    out_of_order_time_window: 30d\n');
  const args = [
    `--config.file=${config}`,
    `--storage.tsdb.path=${data}`,
    '--storage.tsdb.retention.time=100y',
    '--web.enable-remote-write-receiver',
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=error',
  ];
  return { ...(await startServer('prometheus', args, '/-/ready', port)), name: 'Prometheus' };
}

// ---------------------------------------------------------------------------------------------

async function measure() {
  const runs = Math.max(1, Number(process.env.BENCH_RUNS ?? 21));
  const slowRuns = Math.max(3, Math.ceil(runs / 2));
  const wanted = new Set((process.env.BENCH_ROWS ?? '1,2,3,4,5,6,7').split(',').map((s) => s.trim()));
  const work = mkdtempSync(join(os.tmpdir(), 'deployctl-bench-'));
  const started = Date.now();
  const rows = [];
  const node = process.execPath;
  const deployctl = (label, args, env = {}, command = node) => ({
    label,
    command,
    args: typeof args === 'function' ? (i) => [bin, ...args(i)] : [bin, ...args],
    env,
    quiet: true,
  });
  let interrupted = false;
  const onSignal = (signal) => {
    interrupted = true;
    console.error(`\n${signal}: stopping the servers`);
    killAllServers();
    rmSync(work, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', killAllServers);

  const add = (id, name, target, result, extra = {}) => {
    const row = { id, name, target, ...result, ...extra };
    row.met =
      target.ratio === undefined
        ? null
        : row.ratio <= target.ratio && (target.peakMB === undefined || row.peakMB < target.peakMB);
    rows.push(row);
    console.error(
      `  ${id}. ${row.a.label}: ${side(row.a)} ms | ${row.b.label}: ${side(row.b)} ms | ${row.ratio.toFixed(2)}×${row.peakMB !== undefined ? `, peak ${row.peakMB.toFixed(0)} MB` : ''} → ${row.met === null ? '' : row.met ? 'PASS' : 'MISS'} (${target.text})`,
    );
  };
  const skip = (id, name, target, reason) => {
    rows.push({ id, name, target, skipped: reason });
    console.error(`  ${id}. ${name}: skipped: ${reason}`);
  };
  const fail = (id, name, target, reason) => {
    rows.push({ id, name, target, failed: reason });
    process.exitCode = 1;
    console.error(`  ${id}. ${name}: FAILED: ${reason}`);
  };
  const T = {
    1: { ratio: 1.5, text: '≤ 1.5×' },
    '1b': { text: 'for reference' },
    2: { ratio: 1.5, text: '≤ 1.5×' },
    '2b': { text: 'for reference' },
    3: { ratio: 1.5, text: '≤ 1.5×' },
    4: { ratio: 1.3, peakMB: 150, text: '≤ 1.3×, < 150 MB' },
    5: { ratio: 1.1, text: '≤ 1.1×' },
    6: { ratio: 1.3, text: '≤ 1.3×' },
    7: { text: '20,000 within 60 s (≥ 333 records/s), exit 0' },
  };
  const NAMES = {
    1: '`record` vs one `node:http` POST, 10 groups',
    '1b': '`record` vs the least any exact and durable client does (lock, write-ahead, read, write), 10 groups',
    2: '`run -- true` vs one `node:http` POST, 10 groups',
    '2b': '`run -- true` vs the least any exact and durable wrapper does (start `true`, then lock, write-ahead, read, write), 10 groups',
    3: '`--version` vs `node -e 0`',
    4: '`record` vs one full `GET /metrics` + one POST, 10,000 groups',
    5: '`record` on Node 24 vs Node 20, 10 groups',
    6: '`record --remote-write`, 10,000 vs 10 other groups',
    7: '`flush` of kept records in 100 groups to the Pushgateway (BENCH_FLUSH_RECORDS, default 20,000)',
  };

  console.error(
    `deployctl bench: ${runs} runs a side (${slowRuns} at 10,000 groups), node ${process.version}, rows ${[...wanted].join(',')}`,
  );
  let gateway;
  try {
    if (['1', '2', '5'].some((id) => wanted.has(id))) {
      gateway = await gatewayWith(10, work);
      const env = { DEPLOYCTL_PUSHGATEWAY_URL: gateway.url };
      const post = {
        label: 'POST script',
        command: node,
        args: ['-e', postScript, `${gateway.url}/metrics/job/bench-floor/service/post/environment/prod`, groupBody(0)],
      };

      if (wanted.has('1')) {
        const record = deployctl(
          'deployctl record',
          ['record', '-s', 'bench-record', '-e', 'prod', '--status', 'success', '--duration', '12', '-q'],
          env,
        );
        add(1, NAMES[1], T[1], await sideBySide(record, post, runs, work));
        // Each run must have been a whole record: the group counts every one of them.
        const applied = await groupValue(gateway.url, 'bench-record', 'deployctl_records_applied_total');
        if (applied !== runs + 1)
          throw new Error(`the gateway counts ${applied} records of bench-record, not ${runs + 1}`);
      }
      if (wanted.has('1')) {
        // For reference: the same job's floor, done as plainly as Node allows.
        const dir = join(work, 'floor-state');
        mkdirSync(dir, { recursive: true });
        const floor = {
          label: 'lock, write-ahead, GET, POST script',
          command: node,
          args: [
            '-e',
            lockedReadModifyWriteScript,
            gateway.url,
            '/metrics/job/bench-floor/service/rmw/environment/prod',
            groupBody(0),
            dir,
          ],
        };
        const record = deployctl(
          'deployctl record',
          ['record', '-s', 'bench-record-b', '-e', 'prod', '--status', 'success', '--duration', '12', '-q'],
          env,
        );
        add('1b', NAMES['1b'], T['1b'], await sideBySide(record, floor, runs, work));
      }
      if (wanted.has('2')) {
        const run = deployctl(
          'deployctl run -- true',
          ['run', '-s', 'bench-run', '-e', 'prod', '-q', '--', 'true'],
          env,
        );
        add(2, NAMES[2], T[2], await sideBySide(run, post, runs, work));
        // One record per run: a command over within a second is not marked in progress first.
        const applied = await groupValue(gateway.url, 'bench-run', 'deployctl_records_applied_total');
        if (applied !== runs + 1)
          throw new Error(`the gateway counts ${applied} records of bench-run, not ${runs + 1}`);
        // For reference: start the command, then the least an exact and durable record takes.
        const dir = join(work, 'floor-state-run');
        mkdirSync(dir, { recursive: true });
        const floor = {
          label: 'true, then lock, write-ahead, GET, POST script',
          command: node,
          args: [
            '-e',
            commandThenLockedReadModifyWriteScript,
            gateway.url,
            '/metrics/job/bench-floor/service/rmw-run/environment/prod',
            groupBody(0),
            dir,
          ],
        };
        const runB = deployctl(
          'deployctl run -- true',
          ['run', '-s', 'bench-run-b', '-e', 'prod', '-q', '--', 'true'],
          env,
        );
        add('2b', NAMES['2b'], T['2b'], await sideBySide(runB, floor, runs, work));
      }
      if (wanted.has('5')) {
        const node24 = await installNode24();
        if (typeof node24 !== 'string' || !existsSync(node24)) {
          skip(5, NAMES[5], T[5], node24.reason);
        } else {
          const version24 = spawnSync(node24, ['--version'], { encoding: 'utf8' }).stdout.trim();
          const args = ['record', '-s', 'bench-node', '-e', 'prod', '--status', 'success', '--duration', '12', '-q'];
          const a = deployctl(`deployctl record on Node ${version24}`, args, env, node24);
          const b = deployctl(`deployctl record on Node ${process.version}`, args, env);
          add(5, NAMES[5], T[5], await sideBySide(a, b, runs, work));
        }
      }
      await stopServer(gateway);
      gateway = undefined;
    }

    if (wanted.has('3')) {
      const version = deployctl('deployctl --version', ['--version']);
      add(
        3,
        NAMES[3],
        T[3],
        await sideBySide(version, { label: 'node -e 0', command: node, args: ['-e', '0'] }, runs, work),
      );
    }

    if (wanted.has('4')) {
      gateway = await gatewayWith(10_000, work);
      const env = { DEPLOYCTL_PUSHGATEWAY_URL: gateway.url, DEPLOYCTL_TIMEOUT: '60' };
      const record = deployctl(
        'deployctl record',
        ['record', '-s', 'bench-10k', '-e', 'prod', '--status', 'success', '--duration', '12', '-q'],
        env,
      );
      const floor = {
        label: 'GET /metrics + POST script',
        command: node,
        args: [
          '-e',
          readModifyWriteScript,
          gateway.url,
          '/metrics/job/bench-floor/service/rmw/environment/prod',
          groupBody(0),
        ],
      };
      const result = await sideBySide(record, floor, slowRuns, work);
      const peak = await peakMB(record, 3, work);
      const floorPeak = await peakMB(floor, 1, work);
      add(4, NAMES[4], T[4], result, { peakMB: peak, floorPeakMB: floorPeak });
      const applied = await groupValue(gateway.url, 'bench-10k', 'deployctl_records_applied_total');
      if (applied !== slowRuns + 1 + 3)
        throw new Error(`the gateway counts ${applied} records of bench-10k, not ${slowRuns + 4}`);
      await stopServer(gateway);
      gateway = undefined;
    }

    if (wanted.has('6')) await remoteWriteRow(6, NAMES[6], T[6], { add, skip, fail, deployctl, slowRuns, work });
    if (wanted.has('7')) {
      try {
        const row = await flushRow(work);
        row.met = row.throughput.exitCode === 0 && row.throughput.perSecond >= 20_000 / 60;
        rows.push({ id: 7, name: NAMES[7], target: T[7], ...row });
        const t = row.throughput;
        console.error(
          `  7. ${NAMES[7]}: ${t.records} in ${t.seconds.toFixed(1)} s, ${t.perSecond.toFixed(0)} records/s, exit ${t.exitCode} → ${row.met ? 'PASS' : 'MISS'} (${T[7].text})`,
        );
      } catch (error) {
        fail(7, NAMES[7], T[7], error.message);
      }
    }
  } finally {
    if (gateway) await stopServer(gateway);
    if (!interrupted) rmSync(work, { recursive: true, force: true });
  }

  const git = (...args) => spawnSync('git', args, { cwd: root, encoding: 'utf8' }).stdout.trim();
  const dirty =
    git('status', '--porcelain', '--untracked-files=no', '--', 'src', 'bin', 'scripts', 'package.json') !== '';
  const report = {
    date: new Date().toISOString(),
    commit: `${git('rev-parse', '--short', 'HEAD') || 'unknown'}${dirty ? '+changes' : ''}`,
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    runs,
    slowRuns,
    peakMethod: 'GNU time %M (maxrss of the waited child), the largest of 3 runs',
    seconds: Math.round((Date.now() - started) / 1000),
    rows: rows.sort((x, y) => String(x.id).localeCompare(String(y.id))),
  };
  console.log(['', summaryLine(report), '', ...tableLines(report)].join('\n'));
  mkdirSync(join(jsonFile, '..'), { recursive: true });
  writeFileSync(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  console.log(
    `\nwritten to ${jsonFile} in ${report.seconds} s; \`npm run bench -- --readme\` puts the table into docs/performance.md`,
  );
}

/**
 * Row 7: kept records in 100 groups, written as deployctl keeps them (format 2, one file each),
 * sent by one `flush --timeout 120` to a fresh gateway: records per second, with the command's exit
 * code beside them, and every record checked on the gateway (the deployments counted add up).
 */
async function flushRow(work) {
  const records = Math.max(100, Number(process.env.BENCH_FLUSH_RECORDS ?? 20_000));
  const gateway = await startGateway();
  try {
    const dir = join(work, 'flush-state');
    const outbox = join(dir, 'outbox');
    mkdirSync(outbox, { recursive: true });
    const hash = (text) => createHash('sha256').update(text).digest('hex');
    const target = { backend: 'pushgateway', url: new URL(gateway.url).href };
    const tag = hash(`${target.backend} ${target.url}`).slice(0, 8);
    const at = Date.now() / 1000 - 3600;
    for (let i = 0; i < records; i++) {
      const grouping = { job: 'deployctl', service: `bench-flush-${i % 100}`, environment: 'prod' };
      const group = hash(JSON.stringify([grouping.job, grouping.service, grouping.environment])).slice(0, 8);
      const when = at + i / 1000;
      const id = `bench-flush-${i}`;
      const record = {
        kind: 'deployment',
        id,
        status: 'success',
        labels: {},
        version: '',
        commit: '',
        finishedAt: when,
      };
      const kept = { format: 2, keptAt: when, pid: 1, host: 'bench', target, grouping, record };
      writeFileSync(
        join(outbox, `${String(Math.round(when * 1000)).padStart(14, '0')}-${tag}-${group}-${id}.json`),
        `${JSON.stringify(kept)}\n`,
      );
    }
    const result = await execute(process.execPath, [bin, 'flush', '--timeout', '120', '-q'], {
      cwd: work,
      env: childEnv(work, { DEPLOYCTL_STATE_DIR: dir, DEPLOYCTL_PUSHGATEWAY_URL: gateway.url }),
      timeoutMs: 180_000,
    });
    const response = await fetch(`${gateway.url}/metrics`);
    const text = await response.text();
    let counted = 0;
    for (const line of text.split('\n')) {
      if (line.startsWith('deployctl_deployments_total{') && line.includes('service="bench-flush-')) {
        counted += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
    }
    const left = readdirSync(outbox).filter((f) => f.endsWith('.json')).length;
    if (counted + left !== records && result.status === 0) {
      throw new Error(`the gateway counts ${counted} deployments and ${left} are kept, not ${records}`);
    }
    const seconds = result.ms / 1000;
    return {
      throughput: { records: counted, kept: left, seconds, perSecond: counted / seconds, exitCode: result.status },
    };
  } finally {
    await stopServer(gateway);
  }
}

/** Node 24 as .ci/run gets it, installed once into bench/.cache/node24; `{ reason }` when it cannot be had. */
async function installNode24() {
  const dir = join(cache, 'node24');
  const binary = join(dir, 'node_modules/.bin/node');
  const works = () =>
    existsSync(binary) && spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout?.startsWith('v24.');
  if (works()) return binary;
  console.error(`  installing node@24 into ${dir} (once)`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const result = await execute(
    'npm',
    ['install', '--prefix', dir, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', 'node@24'],
    { cwd: dir, env: process.env, timeoutMs: 300_000 },
  ).catch((error) => ({ stderr: error.message }));
  if (works()) return binary;
  return {
    reason: `node@24 could not be installed with npm (${(result.stderr || `exit ${result.status}`).split('\n').at(-1)})`,
  };
}

/** Row 6: one remote-write record with 10 and with 10,000 other groups in each store, the two stores of a kind running side by side. */
async function remoteWriteRow(id, name, target, { add, skip, fail, deployctl, slowRuns, work }) {
  const help =
    spawnSync(process.execPath, [bin, 'record', '--help'], { encoding: 'utf8', env: childEnv(work, {}) }).stdout ?? '';
  if (!help.includes('--remote-write')) return skip(id, name, target, 'no --remote-write');
  const now = Math.floor(Date.now() / 1000);
  for (const [letter, start] of [
    ['a', victoriaMetrics],
    ['b', prometheus],
  ]) {
    let small;
    let large;
    try {
      small = await start(10, work);
      large = await start(10_000, work);
      // Every run is a new deployment of its own commit and finish time, so none is a duplicate of another.
      const record = (store, groups) =>
        // A state directory of its own for every run, as on a fresh CI runner: nothing remembered from the run before.
        deployctl(
          `${store.name}, ${groups} groups`,
          (i) => [
            'record',
            '-s',
            'bench-target',
            '-e',
            'prod',
            '--status',
            'success',
            '--commit',
            `b${i + 1}`,
            '--commit-time',
            String(now - 600),
            '--finished-at',
            String(now - 300 + i + 1),
            '-q',
          ],
          (i) => ({
            DEPLOYCTL_REMOTE_WRITE_URL: `${store.url}/api/v1/write`,
            DEPLOYCTL_STATE_DIR: join(work, `state-${store.name}-${groups}-${i + 1}`),
            DEPLOYCTL_TIMEOUT: '60',
          }),
        );
      add(
        `${id}${letter}`,
        `${name}, ${small.name}`,
        target,
        await sideBySide(record(large, '10,000'), record(small, 10), slowRuns * 2, work),
      );
    } catch (error) {
      fail(
        `${id}${letter}`,
        `${name}, ${start === victoriaMetrics ? 'VictoriaMetrics' : 'Prometheus'}`,
        target,
        error.message.split('\n')[0],
      );
    } finally {
      if (small) await stopServer(small);
      if (large) await stopServer(large);
    }
  }
}

// ---------------------------------------------------------------------------------------------

if (option('--help')) {
  console.log(`usage: node bench/run.mjs [--json PATH]    measure every row, write PATH (default bench/results.json)
       node bench/run.mjs --readme [PATH]  rewrite the performance table in docs/performance.md from PATH
env: BENCH_RUNS (runs per side, default 21; the 10,000-group rows make half as many, at least 3),
     BENCH_ROWS (rows to measure, e.g. 1,2,3; default all: 1-7),
     BENCH_FLUSH_RECORDS (row 7: kept records to flush, default 20000)`);
} else if (option('--readme')) {
  const from = typeof option('--readme') === 'string' ? resolve(option('--readme')) : jsonFile;
  writeFileSync(tableFile, withTable(readFileSync(tableFile, 'utf8'), JSON.parse(readFileSync(from, 'utf8'))));
  console.log(`docs/performance.md: performance table rewritten from ${from}`);
} else {
  await measure();
}
