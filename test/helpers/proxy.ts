import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type ProxyAction =
  | 'forward'
  | 'drop-response'
  | 'hang'
  | { status: number; body: string }
  /** Forward, and pass on the answer's body rewritten (uncompressed: the request asks for no encoding). */
  | { rewrite: (body: string) => string };

export interface TestProxy {
  url: string;
  requests: { method: string; url: string }[];
  close(): Promise<void>;
}

/**
 * An HTTP proxy on 127.0.0.1 in front of a real server (a gateway, Prometheus) that can forward a
 * request and then drop the answer (the server has stored it; the client never hears so), hang,
 * answer itself, or pass on a rewritten answer.
 */
export async function startProxy(
  target: string,
  decide: (request: http.IncomingMessage, index: number) => ProxyAction,
): Promise<TestProxy> {
  const requests: { method: string; url: string }[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((request, response) => {
    const index = requests.push({ method: request.method ?? '', url: request.url ?? '' }) - 1;
    const action = decide(request, index);
    if (action === 'hang') return;
    if (typeof action === 'object' && 'status' in action) {
      response.writeHead(action.status, { 'content-type': 'text/plain' }).end(action.body);
      return;
    }
    const rewrite = typeof action === 'object' ? action.rewrite : undefined;
    const headers = { ...request.headers };
    if (rewrite) delete headers['accept-encoding'];
    const upstream = http.request(
      new URL(request.url ?? '/', target),
      { method: request.method, headers },
      (answer) => {
        if (rewrite) {
          const chunks: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => chunks.push(chunk));
          answer.on('end', () => {
            const body = rewrite(Buffer.concat(chunks).toString('utf8'));
            const { 'content-length': _length, 'transfer-encoding': _encoding, ...rest } = answer.headers;
            response.writeHead(answer.statusCode ?? 502, { ...rest, 'content-length': Buffer.byteLength(body) });
            response.end(body);
          });
          return;
        }
        if (action === 'drop-response') {
          answer.resume();
          answer.on('end', () => request.socket.destroy());
          return;
        }
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
