import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { BIN, deployctl, gatewaySample, startDeployctl } from '../helpers/cli.js';
import { useGatewayAndWorkdir } from '../helpers/pushgateway.js';
import { sleep, until } from '../helpers/wait.js';

const context = useGatewayAndWorkdir();

/** `doctor --json` with this machine's clock moved by `offset` (faketime), as a later day would run it. */
async function doctorAt(offset: string, env: Record<string, string>) {
  const result = await execa('faketime', ['-f', offset, process.execPath, BIN, 'doctor', '--json'], {
    env: { PATH: process.env.PATH ?? '', HOME: context.workdir.path, NO_COLOR: '1', ...env },
    extendEnv: false,
    reject: false,
    timeout: 30_000,
  });
  return JSON.parse(String(result.stdout)) as {
    checks: { ok: boolean; warning?: boolean; what: string; fix?: string }[];
  };
}

describe('a deployment left in progress by a killed run', () => {
  it('doctor names the group and since when, with the fix; the fix closes it', async () => {
    const env = {
      DEPLOYCTL_PUSHGATEWAY_URL: context.gateway.url,
      DEPLOYCTL_STATE_DIR: join(context.workdir.path, 'state'),
    };
    const inProgress = () =>
      gatewaySample(context.gateway.url, 'deployctl_deployment_in_progress', { service: 'stuck', environment: 'prod' });
    const run = startDeployctl(['run', '-s', 'stuck', '-e', 'prod', '--', 'sleep', '30'], { env });
    try {
      expect(await until(async () => (await inProgress()) === 1, 10_000)).toBe(true);
    } finally {
      run.child.kill('SIGKILL');
      await run.exited;
    }
    await sleep(200);
    expect(await inProgress()).toBe(1);

    // Right away it is a deploy in progress like any other; two hours later, doctor names it.
    const soon = await doctorAt('+0', env);
    expect(soon.checks.some((c) => c.what.includes('has been in progress since'))).toBe(false);
    const later = await doctorAt('+2h', env);
    const stuck = later.checks.filter((c) => c.what.includes('has been in progress since'));
    expect(stuck).toHaveLength(1);
    expect(stuck[0]!.what).toMatch(/^stuck in prod has been in progress since \d{4}-\d\d-\d\dT/);
    expect(stuck[0]!.fix).toBe('deployctl finish --status cancelled -s stuck -e prod');

    const fixed = await deployctl(['finish', '--status', 'cancelled', '-s', 'stuck', '-e', 'prod'], { env });
    expect(fixed.exitCode, fixed.stderr).toBe(0);
    expect(await inProgress()).toBe(0);
    const after = await doctorAt('+2h', env);
    expect(after.checks.some((c) => c.what.includes('has been in progress since'))).toBe(false);
  });
});
