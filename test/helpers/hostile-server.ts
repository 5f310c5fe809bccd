import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a hostile or compromised server answers: a carriage return, ESC, BEL, a workflow command, line feeds. */
const HOSTILE_BODY =
  'bad request\r::set-output name=recorded::true\n::set-output name=recorded::true\r\n\x1b[2J\x1b]0;owned\x07\x9b31m done';

/** An HTTP server on 127.0.0.1 that answers every request with `status` and HOSTILE_BODY. */
export async function startHostileServer(status = 400): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      response.writeHead(status, { 'content-type': 'text/plain' });
      response.end(HOSTILE_BODY);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Whether text holds a raw control character a terminal or CI log acts on (CR, ESC, BEL, other C0/C1). */
export function rawControls(text: string): string[] {
  return [...text.matchAll(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g)].map((m) => m[0]);
}
