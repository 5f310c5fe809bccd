// npm run bench: deployctl against the alternatives, on a real Pushgateway on 127.0.0.1.
// Every measurement is a median of several runs; the table is printed and written as JSON.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'bin/deployctl');
const reps = Number(process.env.BENCH_REPS ?? 15);
const work = mkdtempSync(join(tmpdir(), 'deployctl-bench-'));
const python = '/usr/bin/python3';

function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function startGateway(args = []) {
  const port = await freePort();
  const child = spawn('prometheus-pushgateway', [`--web.listen-address=127.0.0.1:${port}`, '--log.level=warn', ...args], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${url}/-/ready`)).ok) return { url, child };
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('prometheus-pushgateway did not start');
}

function stopGateway(gateway) {
  return new Promise((resolve) => {
    gateway.child.once('exit', resolve);
    gateway.child.kill('SIGTERM');
  });
}

/**
 * A gateway that holds `count` other groups. Each push makes the gateway check the whole
 * registry, so filling 10,000 groups one push at a time would take very long: they are pushed
 * to a gateway without that check, persisted, and loaded by a normal gateway from the file.
 */
async function gatewayWith(count) {
  const file = join(work, `gateway-${count}.data`);
  const filler = await startGateway(['--push.disable-consistency-check', `--persistence.file=${file}`]);
  await fillGateway(filler.url, 0, count);
  // Without the check, pushes are applied asynchronously (202): wait until all are there.
  for (let i = 0; i < 100 && (await groupCount(filler.url)) < count; i++) await new Promise((r) => setTimeout(r, 200));
  await stopGateway(filler);
  return startGateway([`--persistence.file=${file}`, '--persistence.interval=1h']);
}

async function groupCount(url) {
  const body = await (await fetch(`${url}/api/v1/metrics`)).json();
  return body.data.length;
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** Wall time of a command in ms, median of `reps` runs after one warm-up. */
function time(command, args, { env = {}, reps: n = reps } = {}) {
  // A scrubbed environment (NODE_EXTRA_CA_CERTS alone adds ~30 ms to every node start) in a
  // directory outside git, so that every contender does the same work: one deployment, no git.
  const options = { cwd: work, env: { PATH: process.env.PATH, HOME: work, DEPLOYCTL_STATE_DIR: join(work, 'state'), ...env }, stdio: ['ignore', 'ignore', 'pipe'] };
  const first = spawnSync(command, args, options);
  if (first.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${first.stderr}`);
  const samples = [];
  for (let i = 0; i < n; i++) {
    const started = process.hrtime.bigint();
    const result = spawnSync(command, args, options);
    samples.push(Number(process.hrtime.bigint() - started) / 1e6);
    if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}`);
  }
  return median(samples);
}

/** Peak resident memory of a command in MB, as getrusage reports it for a waited child. */
function peakMemory(command, args, env) {
  const script = 'import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)';
  const result = spawnSync(python, ['-c', script, command, ...args], { cwd: work, env: { PATH: process.env.PATH, HOME: work, DEPLOYCTL_STATE_DIR: join(work, 'state'), ...env }, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`peak memory of ${command} failed: ${result.stderr}`);
  return Number(result.stdout.trim()) / 1024;
}

/** A group as deployctl leaves it: a counter, a histogram, gauges and an info metric (~20 series). */
function groupBody(i) {
  const buckets = [1, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200].map((le) => `deployctl_deployment_duration_seconds_bucket{status="success",le="${le}"} ${le >= 60 ? 3 : 0}`).join('\n');
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
# TYPE deployctl_deployment_info gauge
deployctl_deployment_info{version="1.${i}.0",commit="abc${i}",status="success"} 1
`;
}

/** Fills the gateway with `count` groups (8 requests in flight, bounded). */
async function fillGateway(url, from, to) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  let next = from;
  const worker = async () => {
    while (next < to) {
      const i = next++;
      const body = groupBody(i);
      await new Promise((resolve, reject) => {
        const request = http.request(`${url}/metrics/job/deployctl/service/filler-${i}/environment/prod`, { method: 'PUT', agent, headers: { 'content-length': Buffer.byteLength(body) } }, (response) => {
          response.resume();
          response.on('end', () => (response.statusCode === 200 || response.statusCode === 202 ? resolve() : reject(new Error(`PUT filler-${i}: ${response.statusCode}`))));
        });
        request.on('error', reject);
        request.end(body);
      });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  agent.destroy();
}

const minimalPush = `
const http = require('node:http');
const body = process.argv[2];
const request = http.request(process.argv[1], { method: 'POST', headers: { 'content-type': 'text/plain; version=0.0.4', 'content-length': Buffer.byteLength(body) } }, (response) => { response.resume(); response.on('end', () => process.exit(response.statusCode === 200 ? 0 : 1)); });
request.end(body);`;

const pythonPush = `
import sys
from prometheus_client import CollectorRegistry, Counter, push_to_gateway
registry = CollectorRegistry()
Counter('bench_python_deployments', 'Deployments.', ['status'], registry=registry).labels('success').inc()
push_to_gateway(sys.argv[1], job='bench-python', grouping_key={'service': 'bench', 'environment': 'prod'}, registry=registry)`;

let gateway = await gatewayWith(10);
const results = [];
const row = (name, ms, extra = {}) => {
  results.push({ name, ms: Number(ms.toFixed(1)), ...extra });
  console.error(`  ${name}: ${ms.toFixed(1)} ms`);
};
try {
  const env = { DEPLOYCTL_PUSHGATEWAY_URL: gateway.url };
  console.error(`deployctl bench: ${reps} runs each, node ${process.version}, gateway ${gateway.url}`);

  const body = groupBody(0);
  const record = time(process.execPath, [bin, 'record', '-s', 'bench', '-e', 'prod', '--status', 'success', '--duration', '12', '-q'], { env });
  row('deployctl record', record);
  const curl = time('curl', ['-sf', '-X', 'POST', '--data-binary', body, `${gateway.url}/metrics/job/bench-curl/service/bench/environment/prod`]);
  row('curl POST (one HTTP request)', curl);
  const node = time(process.execPath, ['-e', minimalPush, `${gateway.url}/metrics/job/bench-node/service/bench/environment/prod`, body]);
  row('node:http POST script', node);
  let py = null;
  try {
    py = time(python, ['-c', pythonPush, gateway.url.replace('http://', '')]);
    row('python prometheus_client push_to_gateway', py);
  } catch (error) {
    console.error(`  python prometheus_client: skipped (${error.message.split('\n')[0]})`);
  }

  const version = time(process.execPath, [bin, '--version']);
  row('deployctl --version', version);
  const nodeEmpty = time(process.execPath, ['-e', '0']);
  row('node -e 0', nodeEmpty);

  const runTrue = time(process.execPath, [bin, 'run', '-s', 'bench-run', '-e', 'prod', '-q', '--', 'true'], { env });
  const bareTrue = time('true', []);
  row('deployctl run -- true', runTrue);
  row('true', bareTrue);

  const bySize = {};
  for (const groups of [10, 1_000, 10_000]) {
    if (groups !== 10) {
      await stopGateway(gateway);
      gateway = await gatewayWith(groups);
    }
    const sizeEnv = { DEPLOYCTL_PUSHGATEWAY_URL: gateway.url, DEPLOYCTL_TIMEOUT: '60' };
    const n = groups >= 10_000 ? Math.min(reps, 7) : reps;
    const held = await groupCount(gateway.url);
    if (held < groups) throw new Error(`the gateway holds ${held} groups, not ${groups}`);
    const read = time('curl', ['-sf', '-o', '/dev/null', `${gateway.url}/api/v1/metrics`], { reps: n });
    row(`curl GET /api/v1/metrics with ${groups} groups (the gateway's cost of one read)`, read);
    const ms = time(process.execPath, [bin, 'record', '-s', `bench-${groups}`, '-e', 'prod', '--status', 'success', '-q'], { env: sizeEnv, reps: n });
    const mb = peakMemory(process.execPath, [bin, 'record', '-s', `bench-${groups}`, '-e', 'prod', '--status', 'success', '-q'], sizeEnv);
    bySize[groups] = { ms, mb, read };
    row(`deployctl record with ${groups} other groups`, ms, { peakMemoryMB: Number(mb.toFixed(1)) });
  }
  const metricsSize = (await (await fetch(`${gateway.url}/api/v1/metrics`)).arrayBuffer()).byteLength;

  const targets = [
    { target: 'record ≤ 1.5× node:http push', ratio: record / node, limit: 1.5 },
    { target: '--version ≤ 1.5× node -e 0', ratio: version / nodeEmpty, limit: 1.5 },
    { target: 'run overhead < 100 ms', value: runTrue - bareTrue, limit: 100, unit: 'ms' },
    { target: 'record with 10,000 groups ≤ 3× with 10', ratio: bySize[10_000].ms / bySize[10].ms, limit: 3 },
    { target: 'peak memory with 10,000 groups < 150 MB', value: bySize[10_000].mb, limit: 150, unit: 'MB' },
  ].map((t) => ({ ...t, met: (t.ratio ?? t.value) <= t.limit }));

  const lines = [
    '',
    `| measurement (median of ${reps}) | ms |`,
    '| --- | ---: |',
    ...results.map((r) => `| ${r.name}${r.peakMemoryMB ? ` (peak ${r.peakMemoryMB} MB)` : ''} | ${r.ms} |`),
    '',
    '| target | measured | met |',
    '| --- | ---: | :---: |',
    ...targets.map((t) => `| ${t.target} | ${t.ratio !== undefined ? `${t.ratio.toFixed(2)}×` : `${t.value.toFixed(1)} ${t.unit}`} | ${t.met ? 'yes' : 'NO'} |`),
    '',
    `gateway JSON at 10,000 groups: ${(metricsSize / 1e6).toFixed(1)} MB; python ${py === null ? 'not measured' : 'measured'}`,
  ];
  console.log(lines.join('\n'));
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout.trim();
  const file = join(root, 'bench/results', `${new Date().toISOString().replace(/[:.]/g, '-')}-${git || 'unknown'}.json`);
  writeFileSync(file, `${JSON.stringify({ commit: git, node: process.version, reps, results, targets, gatewayJsonBytes: metricsSize }, null, 2)}\n`);
  console.log(`\nwritten to ${file}`);
} finally {
  await stopGateway(gateway);
  rmSync(work, { recursive: true, force: true });
}
