import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deployctl, gatewayEnv } from '../helpers/cli.js';
import { useGatewayAndWorkdir } from '../helpers/pushgateway.js';

const context = useGatewayAndWorkdir();

/** Runs deployctl with --json and parses stdout, which must be exactly one JSON document. */
async function json(args: string[], env: Record<string, string> = {}) {
  const result = await deployctl([...args, '--json'], {
    env: gatewayEnv(context.gateway.url, join(context.workdir.path, 'state'), env),
    cwd: context.workdir.path,
  });
  expect(() => JSON.parse(result.stdout), `stdout of ${args.join(' ')}: ${result.stdout}`).not.toThrow();
  return { ...result, document: JSON.parse(result.stdout) as Record<string, unknown> };
}

const down = { DEPLOYCTL_PUSHGATEWAY_URL: 'http://127.0.0.1:9' };

describe('--json prints one JSON document on stdout', () => {
  it('for record, delivered or not, and when the record could not be made at all', async () => {
    const ok = await json(['record', '-s', 'json', '-e', 'prod', '--status', 'success']);
    expect(ok.document).toMatchObject({
      recorded: true,
      service: 'json',
      environment: 'prod',
      status: 'success',
      totals: { success: 1 },
    });
    const kept = await json(['record', '-s', 'json', '-e', 'prod', '--status', 'failure', '--timeout', '0.5'], down);
    expect(kept.exitCode).toBe(0);
    expect(kept.document).toMatchObject({
      recorded: false,
      service: 'json',
      error: expect.stringContaining('ECONNREFUSED'),
    });
    expect(String(kept.document.keptIn)).toContain('outbox');
    const noService = await json(['record', '-e', 'prod', '--status', 'success']);
    expect(noService.document).toEqual({ recorded: false, error: 'no service given' });
  });

  it('for start and finish, flush, status and doctor, also when the gateway is down', async () => {
    expect((await json(['start', '-s', 'json2', '-e', 'prod'])).document).toMatchObject({
      recorded: true,
      kind: 'start',
    });
    expect((await json(['finish', '-s', 'json2', '-e', 'prod', '--status', 'success'])).document).toMatchObject({
      recorded: true,
      status: 'success',
    });
    expect((await json(['flush', '--timeout', '0.5'], down)).document).toHaveProperty('targets');
    expect((await json(['status', '-s', 'json2'])).document).toBeTypeOf('object');
    const statusDown = await json(['status', '--timeout', '0.5'], down);
    expect(statusDown.exitCode).not.toBe(0);
    expect(statusDown.document).toMatchObject({ error: expect.stringContaining('ECONNREFUSED') });
    expect((await json(['doctor', '--timeout', '0.5'], down)).document).toBeTypeOf('object');
  });
});
