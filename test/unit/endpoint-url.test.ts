import { type AddressInfo, createServer } from 'node:net';
import { rootCertificates } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { getText, openTransport, parseEndpointUrl, trustOnly } from '../../src/adapters/http-endpoint.js';

const problem = (value: string) => {
  try {
    parseEndpointUrl(value, '--pushgateway');
    return undefined;
  } catch (error) {
    const { message, hint } = error as Error & { hint?: string };
    return { message, hint: hint ?? '', exitCode: (error as { exitCode?: number }).exitCode };
  }
};

describe('a gateway URL typed wrong', () => {
  it('without a scheme: add http://', () => {
    for (const value of ['localhost:9091', 'gw.example:9091', '127.0.0.1:9091', 'localhost']) {
      const found = problem(value);
      expect(found?.message, value).toBe(`--pushgateway is not a URL: "${value}" has no http:// or https:// in front`);
      expect(found?.hint, value).toBe(`add http:// (or https://): http://${value}`);
      expect(found?.exitCode, value).toBe(2);
    }
  });

  it('a password with an unencoded /: why it is not a URL and how to encode it, never the password', () => {
    const found = problem('http://ci:pa/SECRETss@gw.example:9091');
    expect(found?.message).toBe(
      '--pushgateway is not a URL: a user or password in it (before the @) has a /, ? or # that is not percent-encoded, so the URL\'s host ends there: "http://***@gw.example:9091"',
    );
    expect(found?.hint).toMatch(/\/ as %2F/);
    expect(JSON.stringify(found)).not.toContain('SECRET');
    const bare = problem('ci:SECRET@gw.example:9091');
    expect(bare?.hint).toBe('add http:// (or https://): http://***@gw.example:9091');
    expect(JSON.stringify(bare)).not.toContain('SECRET');
  });

  it('keeps the other answers', () => {
    expect(problem('http://localhost:9091')).toBeUndefined();
    expect(problem(`http://ci:${encodeURIComponent('pa/ss')}@gw:9091`)).toBeUndefined();
    expect(problem('ftp://x')?.message).toBe('--pushgateway must be an http:// or https:// URL, not ftp:');
  });
});

describe('TLS for servers other than the backend', () => {
  it('trustOnly keeps the CA to trust and --insecure, never the client certificate', () => {
    expect(trustOnly({ ca: 'CA', cert: 'CERT', key: 'KEY', insecure: true })).toEqual({
      ca: 'CA',
      withSystemCas: true,
      insecure: true,
    });
    expect(trustOnly({ cert: 'CERT', key: 'KEY' })).toEqual({});
  });

  it("a CA given for the backend adds to the system's CAs for a query server, and replaces them for the backend", async () => {
    const forQueries = await openTransport(true, trustOnly({ ca: 'PRIVATE CA' }));
    const forBackend = await openTransport(true, { ca: 'PRIVATE CA' });
    try {
      const options = (agent: unknown) => (agent as { options: { ca?: unknown } }).options;
      expect(options(forQueries.agent).ca).toEqual([...rootCertificates, 'PRIVATE CA']);
      expect(options(forBackend.agent).ca).toBe('PRIVATE CA');
    } finally {
      forQueries.agent.destroy();
      forBackend.agent.destroy();
    }
  });

  it('a query that runs out of time says so, as fetch does, on the TLS path too', async () => {
    const server = createServer(() => undefined); // accepts, never answers
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const error = await getText(new URL(`https://127.0.0.1:${port}/`), {
        headers: {},
        signal: AbortSignal.timeout(200),
        tls: { insecure: true },
      }).catch((e: unknown) => e as Error);
      expect((error as Error).message).toMatch(/timeout/i);
    } finally {
      server.close();
    }
  });
});
