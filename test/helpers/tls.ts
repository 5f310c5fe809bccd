import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';

export interface TestPki {
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

/** A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl. */
export function makePki(dir: string): TestPki {
  openssl(
    dir,
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=deployctl test CA',
  );
  for (const [name, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    openssl(
      dir,
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${name}`,
    );
    execFileSync('sh', ['-c', `printf '${ext}\\n' > ${name}.ext`], { cwd: dir });
    openssl(
      dir,
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    );
  }
  return {
    caCert: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
  };
}

/**
 * Writes a --web.config.file (of the Prometheus exporter toolkit, which the gateway and Prometheus
 * take) to `path`: mutual TLS with `pki`'s certificates, and basic auth for `users` (name to
 * password, kept bcrypt-hashed). Returns `path`.
 */
export function writeWebConfig(
  path: string,
  { pki, users = {} }: { pki?: TestPki; users?: Record<string, string> },
): string {
  const lines = pki
    ? [
        'tls_server_config:',
        `  cert_file: ${pki.serverCert}`,
        `  key_file: ${pki.serverKey}`,
        '  client_auth_type: RequireAndVerifyClientCert',
        `  client_ca_file: ${pki.caCert}`,
      ]
    : [];
  const hashed = Object.entries(users).map(([name, password]) => `  ${name}: ${bcrypt.hashSync(password, 4)}`);
  if (hashed.length > 0) lines.push('basic_auth_users:', ...hashed);
  writeFileSync(path, [...lines, ''].join('\n'));
  return path;
}

/** deployctl's flags for a client certificate of `pki`, and its CA unless `withCa` is false. */
export function clientTlsFlags(pki: TestPki, { withCa = true }: { withCa?: boolean } = {}): string[] {
  return [...(withCa ? ['--ca-file', pki.caCert] : []), '--cert-file', pki.clientCert, '--key-file', pki.clientKey];
}

/**
 * An https front for a real server (Prometheus, Alertmanager) on a free 127.0.0.1 port, with
 * `pki`'s server certificate: every request is passed to `target` over plain http.
 */
export async function startTlsFront(target: string, pki: TestPki): Promise<{ url: string; close(): Promise<void> }> {
  const upstream = new URL(target);
  const server = https.createServer(
    { key: readFileSync(pki.serverKey), cert: readFileSync(pki.serverCert) },
    (request, response) => {
      const forward = http.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: request.method,
          path: request.url,
          headers: { ...request.headers, host: upstream.host },
        },
        (answer) => {
          response.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(response);
        },
      );
      forward.on('error', () => response.destroy());
      request.pipe(forward);
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
