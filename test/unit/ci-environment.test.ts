import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ciEnvironment } from '../../src/adapters/metadata/ci.js';
import { resolveSettings } from '../../src/cli/settings.js';
import { tempDir } from '../helpers/pushgateway.js';

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => dir.remove());

const gitlab = { GITLAB_CI: 'true', CI: 'true', CI_ENVIRONMENT_NAME: 'review/feature-x' };

describe("GitLab's CI_ENVIRONMENT_NAME", () => {
  it('is the environment on GitLab CI only', () => {
    expect(ciEnvironment(gitlab)).toBe('review/feature-x');
    expect(ciEnvironment({ ...gitlab, CI_ENVIRONMENT_NAME: '' })).toBeUndefined();
    expect(ciEnvironment({ CI: 'true', CI_ENVIRONMENT_NAME: 'production' })).toBeUndefined();
  });

  it('is the default environment, after --env, DEPLOYCTL_ENV and the config file', async () => {
    const fromCi = await resolveSettings({}, gitlab, dir.path);
    expect(fromCi.environment).toBe('review/feature-x');
    expect(fromCi.sources.environment).toBe('default');
    expect((await resolveSettings({ env: 'flag' }, gitlab, dir.path)).environment).toBe('flag');
    expect((await resolveSettings({}, { ...gitlab, DEPLOYCTL_ENV: 'variable' }, dir.path)).environment).toBe(
      'variable',
    );
    writeFileSync(join(dir.path, '.deployctlrc.json'), JSON.stringify({ environment: 'file' }));
    expect((await resolveSettings({}, gitlab, dir.path)).environment).toBe('file');
  });

  it('is checked like any environment, named in the message', async () => {
    await expect(resolveSettings({}, { ...gitlab, CI_ENVIRONMENT_NAME: 'bad\nname' }, dir.path)).rejects.toThrow(
      /CI_ENVIRONMENT_NAME/,
    );
  });
});
