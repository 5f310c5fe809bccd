import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

export interface RunningServer {
  url: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1, as the kernel hands it out. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitUntilReady(url: string, child: ChildProcess, deadlineMs: number): Promise<boolean> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) return false;
    try {
      const response = await fetch(url);
      if (response.ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

function stopper(child: ChildProcess, cleanup: () => void): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        cleanup();
        resolve();
        return;
      }
      child.once('exit', () => {
        cleanup();
        resolve();
      });
      child.kill('SIGTERM');
    });
}

/**
 * Starts a real Debian `prometheus-pushgateway` on a free 127.0.0.1 port and waits until it
 * answers. Debian's build persists to /var/lib/prometheus by default: tests keep state in memory
 * unless they pass a --persistence.file of their own.
 */
export async function startPushgateway(
  extraArgs: string[] = [],
  { port: fixedPort, scheme = 'http' }: { port?: number; scheme?: 'http' | 'https' } = {},
): Promise<RunningServer> {
  const binary = process.env.PUSHGATEWAY_BIN ?? 'prometheus-pushgateway';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = fixedPort ?? (await freePort());
    const memoryOnly = extraArgs.some((a) => a.startsWith('--persistence.file')) ? [] : ['--persistence.file='];
    const child = spawn(
      binary,
      [`--web.listen-address=127.0.0.1:${port}`, '--log.level=warn', ...memoryOnly, ...extraArgs],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const url = `${scheme}://127.0.0.1:${port}`;
    const protectedEndpoints = extraArgs.some((a) => a.startsWith('--web.config.file'));
    const ready = protectedEndpoints
      ? await waitForPort(port, child, 10_000)
      : await waitUntilReady(`${url}/-/ready`, child, 10_000);
    if (ready) return { url, port, process: child, stop: stopper(child, () => undefined) };
    child.kill('SIGKILL');
    if (!stderr.includes('address already in use') || fixedPort) {
      throw new Error(`prometheus-pushgateway did not start: ${stderr}`);
    }
  }
  throw new Error('prometheus-pushgateway found no free port');
}

async function waitForPort(port: number, child: ChildProcess, deadlineMs: number): Promise<boolean> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) return false;
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/**
 * Starts a server binary (Debian's Prometheus, Alertmanager, VictoriaMetrics) that listens on
 * 127.0.0.1:`port`, and waits until `readyUrl` answers 200 (or, without one, until the port takes
 * connections); its stderr is in the error if it does not.
 */
export async function startServer(
  what: string,
  binary: string,
  args: string[],
  port: number,
  readyUrl: string | undefined,
  deadlineMs = 30_000,
): Promise<RunningServer> {
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const ready = readyUrl
    ? await waitUntilReady(readyUrl, child, deadlineMs)
    : await waitForPort(port, child, deadlineMs);
  if (!ready) {
    child.kill('SIGKILL');
    throw new Error(`${what} did not become ready: ${stderr}`);
  }
  return { url: `http://127.0.0.1:${port}`, port, process: child, stop: stopper(child, () => undefined) };
}

export function tempDir(prefix = 'deployctl-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * A real gateway and a temporary directory for one test file: started before its tests, stopped
 * and removed after them. Read `.gateway` inside tests and hooks, once it has started.
 */
export function useGatewayAndWorkdir(): {
  readonly gateway: RunningServer;
  readonly workdir: { path: string; remove(): void };
} {
  const workdir = tempDir();
  let gateway: RunningServer | undefined;
  beforeAll(async () => {
    gateway = await startPushgateway();
  });
  afterAll(async () => {
    await gateway?.stop();
    workdir.remove();
  });
  return {
    get gateway() {
      if (!gateway) throw new Error('the gateway is not started yet');
      return gateway;
    },
    workdir,
  };
}
