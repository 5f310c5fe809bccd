import { describe, expect, it } from 'vitest';
import {
  MARKED_STATE,
  mapStatus,
  outputsFrom,
  parseLabels,
  planAction,
  planStart,
  runUrl,
  STARTED_STATE,
  urlSecrets,
} from '../../src/action/inputs.js';

describe('the action inputs', () => {
  it('map job.status and its spellings', () => {
    expect(
      ['success', 'failure', 'cancelled', 'Cancelled', 'canceled', 'failed', 'skipped', 'done'].map(mapStatus),
    ).toEqual(['success', 'failure', 'cancelled', 'cancelled', 'cancelled', 'failure', 'skipped', undefined]);
  });

  it('read labels one per line or comma-separated', () => {
    expect(parseLabels('team=payments, region=eu\n\n tier=1 ')).toEqual(['team=payments', 'region=eu', 'tier=1']);
  });

  it('mask the password of a URL as written and decoded, and nothing of a URL without one', () => {
    expect(urlSecrets('https://ci:p%40ss@gw.example')).toEqual(['p%40ss', 'p@ss']);
    expect(urlSecrets('https://gw.example')).toEqual([]);
    expect(urlSecrets('not a url')).toEqual([]);
  });

  it('link the run, with the attempt after the first', () => {
    const env = { GITHUB_SERVER_URL: 'https://github.example', GITHUB_REPOSITORY: 'a/b', GITHUB_RUN_ID: '7' };
    expect(runUrl({ ...env, GITHUB_RUN_ATTEMPT: '1' })).toBe('https://github.example/a/b/actions/runs/7');
    expect(runUrl({ ...env, GITHUB_RUN_ATTEMPT: '3' })).toBe('https://github.example/a/b/actions/runs/7/attempts/3');
    expect(runUrl({})).toBeUndefined();
  });

  it('become a record command line; the gateway URL goes by the environment, not argv', () => {
    const plan = planAction({
      INPUT_STATUS: 'cancelled',
      INPUT_SERVICE: 'api',
      INPUT_ENVIRONMENT: 'prod',
      INPUT_PUSHGATEWAY: 'https://u:secret@gw.example',
      INPUT_LABELS: 'team=x',
      INPUT_STRICT: 'false',
      'INPUT_REMOTE-WRITE': '',
      GITHUB_SHA: 'abc',
      GITHUB_HEAD_REF: 'feature',
      GITHUB_REF_NAME: '12/merge',
      GITHUB_REF_TYPE: 'branch',
      GITHUB_REPOSITORY: 'a/b',
    });
    expect(plan).toEqual({
      argv: [
        'record',
        '--json',
        '--status',
        'cancelled',
        '--service',
        'api',
        '--env',
        'prod',
        '--commit',
        'abc',
        '--branch',
        'feature',
        '--repository',
        'a/b',
        '--label',
        'team=x',
      ],
      env: { DEPLOYCTL_PUSHGATEWAY_URL: 'https://u:secret@gw.example' },
      secrets: ['secret'],
      strict: false,
      status: 'cancelled',
    });
  });

  it('turn the JSON result into outputs', () => {
    expect(
      outputsFrom({ recorded: true, totals: { success: 3, failure: 1, cancelled: 0 }, durationSeconds: 12 }, 'success'),
    ).toEqual({
      status: 'success',
      recorded: 'true',
      'success-total': '3',
      'failure-total': '1',
      'cancelled-total': '0',
      'deployments-total': '4',
      'duration-seconds': '12',
      json: '{"recorded":true,"totals":{"success":3,"failure":1,"cancelled":0},"durationSeconds":12}',
    });
    expect(outputsFrom(undefined, 'failure')).toMatchObject({
      status: 'failure',
      recorded: 'false',
      'success-total': '',
      json: '',
    });
  });

  it('time the deploy from the started-at input, else the start the pre step kept', () => {
    const base = { INPUT_STATUS: 'success', INPUT_PUSHGATEWAY: 'http://gw:9091' };
    const startedAt = (env: Record<string, string>) => {
      const argv = planAction(env).argv ?? [];
      const at = argv.indexOf('--started-at');
      return at < 0 ? undefined : argv[at + 1];
    };
    expect(startedAt(base)).toBeUndefined();
    expect(startedAt({ ...base, [`STATE_${STARTED_STATE}`]: '1700000000' })).toBe('1700000000');
    expect(
      startedAt({ ...base, [`STATE_${STARTED_STATE}`]: '1700000000', 'INPUT_STARTED-AT': '2026-01-01T00:00:00Z' }),
    ).toBe('2026-01-01T00:00:00Z');
    // After the pre step marked it in progress, finish closes that start.
    expect(planAction(base).argv?.[0]).toBe('record');
    expect(planAction({ ...base, [`STATE_${MARKED_STATE}`]: 'true' }).argv?.[0]).toBe('finish');
  });

  it('say when no input or variable names a target', () => {
    expect(planAction({ INPUT_STATUS: 'success' }).noTarget).toBe(true);
    expect(planAction({ INPUT_STATUS: 'success', INPUT_PUSHGATEWAY: '  ' }).noTarget).toBe(true);
    expect(planAction({ INPUT_STATUS: 'success', INPUT_PUSHGATEWAY: 'http://gw' }).noTarget).toBeUndefined();
    expect(planAction({ INPUT_STATUS: 'success', 'INPUT_REMOTE-WRITE': 'http://rw' }).noTarget).toBeUndefined();
    expect(planAction({ INPUT_STATUS: 'success', DEPLOYCTL_PUSHGATEWAY_URL: 'http://gw' }).noTarget).toBeUndefined();
  });

  it('mark the deployment in progress at the job start only when service, environment and target are known', () => {
    const full = { INPUT_SERVICE: 'api', INPUT_ENVIRONMENT: 'prod', 'INPUT_REMOTE-WRITE': 'http://rw/api/v1/write' };
    expect(planStart(full, 1700000000)?.argv).toEqual([
      'start',
      '--started-at',
      '1700000000',
      '--service',
      'api',
      '--env',
      'prod',
      '--remote-write',
      'http://rw/api/v1/write',
    ]);
    expect(planStart({ ...full, INPUT_SERVICE: '' }, 1)).toBeUndefined();
    expect(planStart({ INPUT_SERVICE: 'api', INPUT_ENVIRONMENT: 'prod' }, 1)).toBeUndefined();
  });
});
