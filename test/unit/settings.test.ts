import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveSettings } from '../../src/cli/settings.js';
import { tempDir } from '../helpers/pushgateway.js';

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => dir.remove());

describe('resolveSettings', () => {
  it('uses defaults without flags, environment or config', async () => {
    const settings = await resolveSettings({}, {}, dir.path);
    expect(settings).toMatchObject({
      pushgateway: 'http://localhost:9091',
      job: 'deployctl',
      timeoutSeconds: 5,
      strict: false,
      service: undefined,
    });
    expect(settings.sources.pushgateway).toBe('default');
  });

  it('takes flags over environment over config file', async () => {
    writeFileSync(
      join(dir.path, '.deployctlrc.json'),
      JSON.stringify({
        pushgateway: 'http://config:1',
        service: 'cfg',
        environment: 'cfg-env',
        job: 'cfg-job',
        timeout: 3,
      }),
    );
    const env = { DEPLOYCTL_PUSHGATEWAY_URL: 'http://env:2', DEPLOYCTL_SERVICE: 'env-svc' };
    const settings = await resolveSettings({ service: 'flag-svc', timeout: '7' }, env, dir.path);
    expect(settings).toMatchObject({
      pushgateway: 'http://env:2',
      service: 'flag-svc',
      environment: 'cfg-env',
      job: 'cfg-job',
      timeoutSeconds: 7,
    });
    expect(settings.sources).toMatchObject({
      pushgateway: 'environment',
      service: 'flag',
      environment: 'config',
      job: 'config',
      timeout: 'flag',
    });
    expect(settings.configFile).toBe(join(dir.path, '.deployctlrc.json'));
  });

  it('reads a deployctl key in package.json and YAML rc files', async () => {
    writeFileSync(join(dir.path, 'package.json'), JSON.stringify({ name: 'x', deployctl: { service: 'from-pkg' } }));
    expect((await resolveSettings({}, {}, dir.path)).service).toBe('from-pkg');
    rmSync(join(dir.path, 'package.json'));
    writeFileSync(join(dir.path, '.deployctlrc.yaml'), 'service: from-yaml\nlabels:\n  team: core\n');
    const settings = await resolveSettings({ label: ['tier=1'] }, {}, dir.path);
    expect(settings.service).toBe('from-yaml');
    expect(settings.labels).toEqual({ team: 'core', tier: '1' });
  });

  it('lists every problem of a bad config file with the file and the key', async () => {
    const file = join(dir.path, '.deployctlrc.json');
    writeFileSync(
      file,
      JSON.stringify({ pushgateway: 'not a url', timeout: -1, strict: 'yes', labels: { 'bad-name': 'x' }, unknown: 1 }),
    );
    const error = await resolveSettings({}, {}, dir.path).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    const message = (error as Error).message;
    expect(message).toContain(`invalid config file ${file}`);
    expect(message).toMatch(/pushgateway: must be a URL/);
    expect(message).toMatch(/timeout: must be more than 0/);
    expect(message).toMatch(/strict: must be true or false/);
    expect(message).not.toContain('not a url');
  });

  it('ignores an unknown key with a warning that names it, so a newer config still works', async () => {
    const file = join(dir.path, '.deployctlrc.json');
    writeFileSync(file, JSON.stringify({ service: 'api', colour: 'red', auth: { username: 'u', passwd: 'x' } }));
    const settings = await resolveSettings({}, {}, dir.path);
    expect(settings.service).toBe('api');
    expect(settings.warnings).toEqual([
      `${file}: colour is not a deployctl setting; ignored`,
      `${file}: auth.passwd is not a deployctl setting; ignored (did you mean auth.password?)`,
    ]);
  });

  it('never echoes a password or a URL from the config file in its complaints', async () => {
    const file = join(dir.path, '.deployctlrc.json');
    writeFileSync(
      file,
      JSON.stringify({
        pushgateway: 'http://u:hunter2@exa mple',
        auth: { password: 12345678 },
        headers: { 'X-Key': 987654 },
      }),
    );
    const message = String(await resolveSettings({}, {}, dir.path).catch((e: Error) => e.message));
    expect(message).toMatch(/pushgateway: must be a URL/);
    expect(message).toMatch(/auth\.password: must be a string/);
    for (const secret of ['hunter2', '12345678', '987654']) expect(message).not.toContain(secret);
  });

  it('names where a bad value came from', async () => {
    await expect(resolveSettings({}, { DEPLOYCTL_PUSHGATEWAY_URL: 'nope' }, dir.path)).rejects.toThrow(
      /DEPLOYCTL_PUSHGATEWAY_URL is not a URL/,
    );
    await expect(resolveSettings({}, { DEPLOYCTL_TIMEOUT: 'x' }, dir.path)).rejects.toThrow(
      /DEPLOYCTL_TIMEOUT must be a number/,
    );
    await expect(resolveSettings({}, { DEPLOYCTL_STRICT: 'maybe' }, dir.path)).rejects.toThrow(
      /DEPLOYCTL_STRICT must be true or false/,
    );
    writeFileSync(join(dir.path, '.deployctlrc.json'), JSON.stringify({ labels: { 'bad-name': 'x' } }));
    await expect(resolveSettings({}, {}, dir.path)).rejects.toThrow(
      /labels\.bad-name in .*\.deployctlrc\.json: "bad-name" is not a valid label name/,
    );
  });

  it('does not echo a password from an unparseable gateway URL', async () => {
    await expect(resolveSettings({ pushgateway: 'http://bob:hunter2@exa mple' }, {}, dir.path)).rejects.toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('hunter2') }),
    );
  });
});
