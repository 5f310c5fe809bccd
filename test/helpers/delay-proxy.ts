import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { sleep } from './wait.js';

export interface DelayProxy {
  url: string;
  /** Every request received, with the time it arrived (Date.now()). */
  requests: { method: string; url: string; at: number }[];
  /** Requests forwarded to the gateway and not yet answered to the client. */
  inFlight(): number;
  /** Requests received and not yet done with: held, forwarded, or answered only now. */
  pending(): number;
  close(): Promise<void>;
}

export interface DelayOptions {
  /** Milliseconds to hold a request before forwarding it (called once per request). */
  before: () => number;
  /** Milliseconds to hold the gateway's answer before passing it on. */
  after: () => number;
  /** Called as each request arrives, before it is held. */
  onRequest?: (request: http.IncomingMessage) => void;
}

/**
 * An HTTP proxy on 127.0.0.1 in front of a real gateway that slows every request down: it reads
 * the whole request, waits, forwards it (unless the client has gone meanwhile: a request that
 * never left), then waits again before answering. A slowed push, to kill a client in the middle of.
 */
export async function startDelayProxy(target: string, options: DelayOptions): Promise<DelayProxy> {
  const requests: DelayProxy['requests'] = [];
  const sockets = new Set<Socket>();
  let inFlight = 0;
  let pending = 0;
  const server = http.createServer(async (request, response) => {
    pending += 1;
    try {
      await relay(request, response);
    } finally {
      pending -= 1;
    }
  });
  const relay = async (request: http.IncomingMessage, response: http.ServerResponse) => {
    requests.push({ method: request.method ?? '', url: request.url ?? '', at: Date.now() });
    options.onRequest?.(request);
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    await sleep(options.before());
    if (request.socket.destroyed) return;
    inFlight += 1;
    try {
      const answer = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>(
        (resolve, reject) => {
          const headers = { ...request.headers };
          delete headers.connection;
          const upstream = http.request(
            new URL(request.url ?? '/', target),
            { method: request.method, headers },
            (res) => {
              const body: Buffer[] = [];
              res.on('data', (c: Buffer) => body.push(c));
              res.on('end', () =>
                resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(body) }),
              );
              res.on('error', reject);
            },
          );
          upstream.on('error', reject);
          upstream.end(Buffer.concat(chunks));
        },
      );
      await sleep(options.after());
      if (request.socket.destroyed) return;
      response.writeHead(answer.status, answer.headers).end(answer.body);
    } catch {
      response.destroy();
    } finally {
      inFlight -= 1;
    }
  };
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    inFlight: () => inFlight,
    pending: () => pending,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
