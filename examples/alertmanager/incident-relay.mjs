#!/usr/bin/env node
// A webhook receiver for Alertmanager that records incidents with deployctl: each notification's
// body is handed to `deployctl incident --from-alertmanager -` on stdin. It answers 200 only once
// deployctl exited 0 (the incidents are recorded, or kept by deployctl and sent later), 400 when
// deployctl refused the payload (exit 2: retrying would not help), and 500 otherwise, so that
// Alertmanager retries. A replayed notification changes nothing (record ids come from the payload).
//
// No dependencies: Node's http module only.
//
//   node incident-relay.mjs [--listen 127.0.0.1:9095] [--deployctl deployctl] [-- deployctl options...]
//
// Options after -- go to deployctl (e.g. -- --pushgateway http://pushgateway:9091 --job deploys);
// the environment (DEPLOYCTL_PUSHGATEWAY_URL, DEPLOYCTL_REMOTE_WRITE_URL, credentials…) is passed on.
// It listens on 127.0.0.1 unless told otherwise: put it beside Alertmanager, or behind a proxy
// that authenticates, before listening on another address.
import { spawn } from 'node:child_process';
import http from 'node:http';

const MAX_BODY_BYTES = 16 * 1024 * 1024;

function parseArguments(argv) {
  const options = { listen: '127.0.0.1:9095', deployctl: 'deployctl', extra: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      options.extra = argv.slice(i + 1);
      break;
    }
    if (arg === '--listen' || arg === '--deployctl') {
      const value = argv[++i];
      if (value === undefined) throw new Error(`${arg} needs a value`);
      options[arg.slice(2)] = value;
    } else if (arg === '--help' || arg === '-h') {
      process.stdout.write('usage: incident-relay.mjs [--listen HOST:PORT] [--deployctl PATH] [-- deployctl options]\n');
      process.exit(0);
    } else {
      throw new Error(`unknown argument ${arg} (options for deployctl go after --)`);
    }
  }
  const colon = options.listen.lastIndexOf(':');
  const port = Number(options.listen.slice(colon + 1));
  if (colon < 0 || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--listen must be HOST:PORT, not ${options.listen}`);
  options.host = options.listen.slice(0, colon).replace(/^\[|\]$/g, '') || '127.0.0.1';
  options.port = port;
  return options;
}

const log = (message) => process.stderr.write(`incident-relay: ${message}\n`);

/** Runs deployctl with the body on stdin; resolves with its exit code (or 127 when it cannot be started). */
function runDeployctl(options, body) {
  return new Promise((resolve) => {
    const child = spawn(options.deployctl, ['incident', '--from-alertmanager', '-', ...options.extra], {
      stdio: ['pipe', 'inherit', 'inherit'],
    });
    child.on('error', (error) => {
      log(`cannot run ${options.deployctl}: ${error.message}`);
      resolve(127);
    });
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    child.stdin.on('error', () => undefined); // deployctl may exit before reading it all
    child.stdin.end(body);
  });
}

function main() {
  let options;
  try {
    options = parseArguments(process.argv.slice(2));
  } catch (error) {
    log(error.message);
    process.exit(2);
  }
  const server = http.createServer((request, response) => {
    if (request.method !== 'POST') {
      response.writeHead(405, { allow: 'POST' }).end('POST an Alertmanager webhook payload\n');
      return;
    }
    const chunks = [];
    let size = 0;
    let tooLarge = false;
    request.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    request.on('end', async () => {
      if (tooLarge) {
        response.writeHead(413).end('payload too large\n');
        return;
      }
      const code = await runDeployctl(options, Buffer.concat(chunks));
      const status = code === 0 ? 200 : code === 2 ? 400 : 500;
      log(`${request.method} ${request.url}: deployctl exited ${code}; answered ${status}`);
      response.writeHead(status, { 'content-type': 'text/plain' }).end(`deployctl exited ${code}\n`);
    });
  });
  server.listen(options.port, options.host, () => {
    const address = server.address();
    log(`listening on ${address.address}:${address.port}`);
  });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
}

main();
