import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deployctl, hasGroup } from '../helpers/cli.js';
import { useGatewayAndWorkdir } from '../helpers/pushgateway.js';

// One rule for a bad config file, the same in every command (docs/failure-modes.md): the recording
// commands warn and go on (exit 2 under --strict, run before starting its command), the reading
// commands exit 2. Nothing is pushed either way.

const ctx = useGatewayAndWorkdir();

/** Each mistake: the file, its text, and the message that names it (`FILE` stands for its path). */
const MISTAKES = [
  {
    what: 'a YAML syntax error',
    name: '.deployctlrc.yaml',
    text: 'job: deployctl\nlabels: [team\nstrict: false\n',
    message: 'FILE:3:1: missed comma between flow collection entries',
  },
  {
    what: 'a JSON syntax error',
    name: '.deployctlrc.json',
    text: '{\n  "job": "deployctl",,\n  "strict": false\n}\n',
    message: 'FILE:2:22: Expected double-quoted property name',
  },
  {
    what: 'an invalid value',
    name: '.deployctlrc.json',
    text: '{ "timeout": "five" }\n',
    message: 'invalid config file FILE:\n  timeout: must be a number of seconds, not "five"',
  },
] as const;

describe.each(MISTAKES)('$what', ({ what, name, text, message }) => {
  let n = 0;
  /** A folder of its own holding the broken file, a service of its own, the gateway through the environment. */
  const setup = () => {
    const dir = join(ctx.workdir.path, `${what.replace(/\W+/g, '-')}-${++n}`);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, name);
    writeFileSync(file, text);
    const service = `cfg-${n}-${what.length}`;
    const env = { DEPLOYCTL_PUSHGATEWAY_URL: ctx.gateway.url, DEPLOYCTL_STATE_DIR: join(dir, 'state') };
    return { dir, service, env, said: message.replace('FILE', file) };
  };

  it('record, start, finish and flush: a warning and exit 0; exit 2 under --strict; nothing pushed', async () => {
    const { dir, service, env, said } = setup();
    const target = ['-s', service, '-e', 'prod'];
    for (const args of [
      ['record', ...target, '--status', 'success'],
      ['start', ...target],
      ['finish', ...target],
    ]) {
      const plain = await deployctl(args, { env, cwd: dir });
      expect(plain.exitCode, `${args[0]}: ${plain.stderr}`).toBe(0);
      expect(plain.stderr).toContain(`deployctl: warning: not recorded: ${said}`);
      const strict = await deployctl([...args, '--strict'], { env, cwd: dir });
      expect(strict.exitCode, `${args[0]} --strict`).toBe(2);
      expect(strict.stderr).toContain(said);
    }
    const flush = await deployctl(['flush'], { env, cwd: dir });
    expect(flush.exitCode).toBe(0);
    expect(flush.stderr).toContain(`deployctl: warning: not flushed: ${said}`);
    expect((await deployctl(['flush', '--strict'], { env, cwd: dir })).exitCode).toBe(2);
    expect(await hasGroup(ctx.gateway.url, service)).toBe(false);
  });

  it('run: the command runs and its exit code wins; under --strict exit 2 and it never starts', async () => {
    const { dir, service, env, said } = setup();
    const marker = join(dir, 'ran');
    const command = ['--', 'sh', '-c', `touch ${marker}; exit 3`];
    const plain = await deployctl(['run', '-s', service, '-e', 'prod', ...command], { env, cwd: dir });
    expect(plain.exitCode).toBe(3);
    expect(existsSync(marker)).toBe(true);
    expect(plain.stderr).toContain(`not recorded: ${said}`);

    const strictMarker = join(dir, 'ran-strict');
    const strict = await deployctl(
      ['run', '-s', service, '-e', 'prod', '--strict', '--', 'sh', '-c', `touch ${strictMarker}`],
      { env, cwd: dir },
    );
    expect(strict.exitCode).toBe(2);
    expect(existsSync(strictMarker)).toBe(false);
    expect(await hasGroup(ctx.gateway.url, service)).toBe(false);
  });

  it('status, dora, doctor and delete: exit 2 with the message', async () => {
    const { dir, service, env, said } = setup();
    for (const args of [
      ['status'],
      ['dora', '--prometheus', 'http://127.0.0.1:9'],
      ['doctor'],
      ['delete', '-s', service, '-e', 'prod', '--yes'],
    ]) {
      const result = await deployctl(args, { env, cwd: dir });
      expect(result.exitCode, `${args[0]}: ${result.stderr}`).toBe(2);
      expect(result.stderr).toContain(`deployctl: ${said}`);
    }
  });
});

describe('a typo of the target key', () => {
  it('is ignored with "did you mean", and the warning says records go to the default gateway', async () => {
    const dir = join(ctx.workdir.path, 'typo');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, '.deployctlrc.json');
    writeFileSync(file, JSON.stringify({ pushgatway: ctx.gateway.url, service: 'typo', environment: 'prod' }));
    const result = await deployctl(['record', '--status', 'success', '--dry-run'], {
      env: { DEPLOYCTL_STATE_DIR: join(dir, 'state') },
      cwd: dir,
    });
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain(
      `deployctl: warning: ${file}: pushgatway is not a deployctl setting; ignored (did you mean pushgateway?)`,
    );
    expect(result.stderr).toContain(
      `deployctl: warning: no pushgateway or remoteWrite is set, so records go to the default http://localhost:9091: pushgatway in ${file} was not recognised`,
    );
    expect(result.stdout).toContain('POST http://localhost:9091/metrics/');
    expect(await hasGroup(ctx.gateway.url, 'typo')).toBe(false);
  });
});
