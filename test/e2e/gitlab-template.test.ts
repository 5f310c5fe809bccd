import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { BIN, scrape } from '../helpers/cli.js';
import { select, value } from '../helpers/exposition.js';
import { TestRepo } from '../helpers/git.js';
import { useGatewayAndWorkdir } from '../helpers/pushgateway.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const context = useGatewayAndWorkdir();
const templatePath = join(root, 'examples/gitlab/deployctl.gitlab-ci.yml');
const template = parse(readFileSync(templatePath, 'utf8')) as Record<
  string,
  { before_script: string[]; after_script: string[] }
>;

/** One GitLab job around `script`: before_script, script and after_script each in a shell of its own, as the runner does. */
async function gitlabJob(
  service: string,
  script: string,
  jobStatus: (scriptExit: number) => string,
): Promise<{ exits: number[]; stderr: string }> {
  const repo = new TestRepo(join(context.workdir.path, `repo-${service}`));
  const sha = repo.commit('deploy me', 1_767_261_600);
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: repo.path,
    NO_COLOR: '1',
    CI: 'true',
    GITLAB_CI: 'true',
    CI_COMMIT_SHA: sha,
    CI_COMMIT_REF_NAME: 'main',
    CI_COMMIT_BRANCH: 'main',
    CI_PROJECT_PATH: 'acme/shop',
    CI_PROJECT_DIR: repo.path,
    CI_JOB_ID: '77',
    CI_JOB_URL: 'https://gitlab.example/acme/shop/-/jobs/77',
    CI_PIPELINE_ID: '9',
    DEPLOYCTL: `${process.execPath} ${BIN}`,
    DEPLOYCTL_SERVICE: service,
    DEPLOYCTL_ENV: 'production',
    DEPLOYCTL_PUSHGATEWAY_URL: context.gateway.url,
  };
  const shell = async (lines: string[], extra: Record<string, string> = {}) => {
    try {
      const { stderr } = await run('bash', ['-c', lines.join('\n')], { env: { ...env, ...extra }, cwd: repo.path });
      return { exit: 0, stderr };
    } catch (error) {
      const e = error as { code: number; stderr: string };
      return { exit: e.code, stderr: e.stderr };
    }
  };
  const job = template['.deployctl']!;
  const before = await shell(job.before_script);
  const main = await shell([script]);
  const after = await shell(job.after_script, { CI_JOB_STATUS: jobStatus(main.exit) });
  return { exits: [before.exit, main.exit, after.exit], stderr: before.stderr + after.stderr };
}

describe('the GitLab CI template', () => {
  it('can be included: it defines hidden jobs only', () => {
    expect(Object.keys(template)).toEqual(['.deployctl']);
  });

  it('records success, failure and cancelled from CI_JOB_STATUS, with the start time from before_script', async () => {
    const ok = await gitlabJob('gl-ok', 'sleep 1', () => 'success');
    expect(ok.exits).toEqual([0, 0, 0]);
    const failed = await gitlabJob('gl-failed', 'exit 3', () => 'failed');
    expect(failed.exits).toEqual([0, 3, 0]);
    const canceled = await gitlabJob('gl-canceled', 'true', () => 'canceled');
    expect(canceled.exits).toEqual([0, 0, 0]);

    const samples = await scrape(context.gateway.url);
    const count = (service: string, status: string) =>
      value(samples, 'deployctl_deployments_total', { service, environment: 'production', status });
    expect([count('gl-ok', 'success'), count('gl-ok', 'failure'), count('gl-ok', 'cancelled')]).toEqual([1, 0, 0]);
    expect([count('gl-failed', 'success'), count('gl-failed', 'failure'), count('gl-failed', 'cancelled')]).toEqual([
      0, 1, 0,
    ]);
    expect([
      count('gl-canceled', 'success'),
      count('gl-canceled', 'failure'),
      count('gl-canceled', 'cancelled'),
    ]).toEqual([0, 0, 1]);
    // before_script's start put the start time down: the 1 s script is in the duration.
    expect(
      value(samples, 'deployctl_deployment_duration_seconds_sum', { service: 'gl-ok', status: 'success' }),
    ).toBeGreaterThanOrEqual(1);
    expect(value(samples, 'deployctl_deployment_in_progress', { service: 'gl-ok' })).toBe(0);
    expect(
      select(samples, 'deployctl_deployment_source_info', { service: 'gl-failed' }).map((s) => [
        s.labels.ci,
        s.labels.repository,
        s.labels.branch,
      ]),
    ).toEqual([['gitlab', 'acme/shop', 'main']]);
  });

  it('never stops the deploy over a gateway that is down, unless DEPLOYCTL_STRICT=true', async () => {
    const lines = template['.deployctl']!.before_script;
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: context.workdir.path,
      DEPLOYCTL: `${process.execPath} ${BIN}`,
      DEPLOYCTL_SERVICE: 'gl-down',
      DEPLOYCTL_ENV: 'production',
      DEPLOYCTL_PUSHGATEWAY_URL: 'http://127.0.0.1:9',
      DEPLOYCTL_TIMEOUT: '1',
      DEPLOYCTL_STATE_DIR: join(context.workdir.path, 'state-down'),
    };
    await expect(run('bash', ['-c', lines.join('\n')], { env })).resolves.toBeDefined();
    await expect(
      run('bash', ['-c', lines.join('\n')], { env: { ...env, DEPLOYCTL_STRICT: 'true' } }),
    ).rejects.toMatchObject({ code: 1 });
  });
});
