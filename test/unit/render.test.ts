import { describe, expect, it } from 'vitest';
import {
  consoleReporter,
  renderError,
  renderFlushOutcome,
  renderNotRecorded,
  renderRecordOutcome,
} from '../../src/cli/render/output.js';
import { type ReadingView, renderReading } from '../../src/cli/render/reading.js';
import { DeployctlError, UsageError } from '../../src/core/errors.js';

type RecordOutcome = Parameters<typeof renderRecordOutcome>[0];
type FlushOutcome = Parameters<typeof renderFlushOutcome>[0];

interface Shown {
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

/** What a reporter writes, as data: stdout and stderr apart. */
function collect(settings: Shown = {}, besideCommand = false) {
  const out = { stdout: '', stderr: '' };
  const shown = { json: false, quiet: false, verbose: false, ...settings };
  const reporter = consoleReporter(
    shown,
    { NO_COLOR: '1' },
    {
      besideCommand,
      streams: { stdout: (t) => void (out.stdout += t), stderr: (t) => void (out.stderr += t) },
    },
  );
  return { out, reporter, shown };
}

const grouping = { job: 'deployctl', service: 'api', environment: 'prod' };
const target = { backend: 'pushgateway' as const, url: 'http://127.0.0.1:9091' };
const deployment = {
  kind: 'deployment' as const,
  id: 'r1',
  status: 'success' as const,
  finishedAt: 1_767_225_600,
  version: '1.4.2',
  commit: 'abc123',
  labels: {},
};
const noBacklog = { sent: 0, remaining: 0, quarantined: [], otherTargets: 0 };

const recordOutcomes: Record<string, RecordOutcome> = {
  delivered: {
    record: deployment,
    grouping,
    target,
    delivered: true,
    delivery: {
      duplicate: false,
      notices: ['first deployment of this group: lead time of the deployed commit alone'],
      durationSeconds: 42.5,
      leadTimes: [3600],
      totals: { success: 3, failure: 1 },
      attempts: 1,
    },
    keptIn: '/state/outbox/x.json',
    backlog: { sent: 2, remaining: 0, quarantined: [], otherTargets: 0 },
  },
  duplicate: {
    record: deployment,
    grouping,
    target,
    delivered: true,
    delivery: { duplicate: true, notices: [], attempts: 1 },
    backlog: noBacklog,
  },
  'sent by another': { record: deployment, grouping, target, delivered: true, sentByAnother: true, backlog: noBacklog },
  kept: {
    record: deployment,
    grouping,
    target,
    delivered: false,
    keptIn: '/state/outbox/x.json',
    failure: { message: 'could not reach the gateway: ECONNREFUSED', hint: 'is the Pushgateway running?' },
    backlog: {
      sent: 0,
      remaining: 3,
      quarantined: [
        { file: '/state/outbox/bad.json', problem: 'not JSON', movedTo: '/state/outbox/quarantine/bad.json' },
      ],
      otherTargets: 1,
    },
  },
  'not kept, not sent': {
    record: { kind: 'start', id: 's1', startedAt: 1_767_225_000 },
    grouping,
    target,
    delivered: false,
    notKept: 'EROFS',
    failure: { message: 'out of time' },
    backlog: noBacklog,
  },
  'dry run': {
    record: {
      kind: 'step',
      id: 'p1',
      step: 'migrate',
      status: 'failure',
      finishedAt: 1_767_225_600,
      durationSeconds: 3,
    },
    grouping,
    target,
    delivered: false,
    dryRun: { url: 'http://127.0.0.1:9091/metrics/job@base64/x', text: 'POST …\n\nbody\n', json: { url: 'u' } },
    backlog: noBacklog,
  },
};

describe('what a record shows', () => {
  for (const [name, outcome] of Object.entries(recordOutcomes)) {
    it(`${name}: as text, as JSON, and beside a wrapped command`, () => {
      const text = collect();
      renderRecordOutcome(outcome, text.shown, text.reporter);
      const json = collect({ json: true });
      renderRecordOutcome(outcome, json.shown, json.reporter);
      const beside = collect({}, true);
      renderRecordOutcome(outcome, beside.shown, beside.reporter);
      const quiet = collect({ quiet: true });
      renderRecordOutcome(outcome, quiet.shown, quiet.reporter);
      expect({ text: text.out, json: json.out, beside: beside.out, quiet: quiet.out }).toMatchSnapshot();
      // Beside a command nothing reaches stdout: it is the command's.
      expect(beside.out.stdout).toBe('');
    });
  }
});

describe('what flush shows', () => {
  const outcomes: Record<string, FlushOutcome> = {
    empty: { targets: [], quarantined: [], dryRun: false, held: 0, unread: 0 },
    'dry run': {
      targets: [
        {
          target,
          sent: 0,
          remaining: 1,
          failures: [],
          held: [],
          pending: [{ record: deployment, grouping }],
          configured: false,
        },
      ],
      quarantined: [],
      dryRun: true,
      held: 0,
      unread: 0,
    },
    'some still kept': {
      targets: [
        {
          target,
          sent: 2,
          remaining: 1,
          failures: [{ record: deployment, grouping, failure: { message: 'HTTP 500' } }],
          held: [],
          pending: [],
          configured: true,
        },
      ],
      quarantined: [{ file: '/state/outbox/bad.json', problem: 'not JSON' }],
      dryRun: false,
      held: 0,
      unread: 0,
    },
  };
  for (const [name, outcome] of Object.entries(outcomes)) {
    it(name, () => {
      const text = collect();
      renderFlushOutcome(outcome, text.shown, text.reporter);
      const json = collect({ json: true });
      renderFlushOutcome(outcome, json.shown, json.reporter);
      expect({ text: text.out, json: json.out }).toMatchSnapshot();
    });
  }
});

describe('what the reading commands show, and their exit codes', () => {
  const now = 1_767_229_200;
  const group = {
    job: 'deployctl',
    service: 'api',
    environment: 'prod',
    version: '1.4.2',
    commit: 'abc123',
    status: 'success',
    finishedAt: 1_767_225_600,
    durationSeconds: 42,
    inProgress: false,
    startedAt: null,
    deployments: { success: 3, failure: 1 },
    rollbacks: 1,
    failedChanges: 2,
    openIncidents: { count: 0, since: null },
    latestVerification: { result: 'pass', at: 1_767_225_700 },
  };
  const key = (value: number | null, band: string | null) => ({ value, band });
  const views: Record<string, ReadingView> = {
    'status, no groups': { kind: 'status', groups: [], shownUrl: 'http://127.0.0.1:9091', job: 'deployctl' },
    'status, a group deploying': {
      kind: 'status',
      groups: [
        group,
        {
          ...group,
          service: 'web',
          inProgress: true,
          startedAt: now - 90,
          rollbacks: 0,
          failedChanges: 0,
          latestVerification: null,
        },
        {
          ...group,
          service: 'billing',
          failedChanges: 1,
          openIncidents: { count: 2, since: now - 600 },
          latestVerification: { result: 'fail', at: now - 1_200 },
        },
      ],
      shownUrl: 'http://127.0.0.1:9091',
      job: 'deployctl',
    },
    'dora, 30 days': {
      kind: 'dora',
      window: '30d',
      shortWindow: false,
      shownUrl: 'http://127.0.0.1:9090',
      rows: [
        {
          job: 'deployctl',
          service: 'api',
          environment: 'prod',
          deployments: { success: 9, failure: 1 },
          failedChanges: 2,
          failedChangesByReason: { failure: 1, rollback: 1, verification: 0, incident: 0 },
          rollbacks: 1,
          reworkDeployments: 2,
          deploymentFrequencyPerDay: key(0.3, 'high'),
          leadTimeSeconds: key(7200, 'elite'),
          changeFailureRate: key(0.2, 'high'),
          failedDeploymentRecoveryTimeSeconds: key(5400, 'high'),
          deploymentReworkRate: key(0.2, null),
          deploymentFailureRate: 0.1,
          timeToRestoreSeconds: key(1800, 'elite'),
        },
      ],
    },
    'dora, 6 hours': {
      kind: 'dora',
      window: '6h',
      shortWindow: true,
      shownUrl: 'http://127.0.0.1:9090',
      rows: [
        {
          job: 'deployctl',
          service: 'api',
          environment: 'prod',
          deployments: { success: 2 },
          failedChanges: 0,
          failedChangesByReason: { failure: 0, rollback: 0, verification: 0, incident: 0 },
          rollbacks: 0,
          reworkDeployments: 0,
          deploymentFrequencyPerDay: key(null, null),
          leadTimeSeconds: key(null, null),
          changeFailureRate: key(0, 'elite'),
          failedDeploymentRecoveryTimeSeconds: key(null, null),
          deploymentReworkRate: key(0, null),
          deploymentFailureRate: 0,
          timeToRestoreSeconds: key(null, null),
        },
      ],
    },
    'dora, nothing': { kind: 'dora', window: '30d', shortWindow: false, shownUrl: 'http://127.0.0.1:9090', rows: [] },
    'doctor, a problem': {
      kind: 'doctor',
      config: {
        version: '0.1.0',
        node: 'v20.19.0',
        configFile: null,
        pushgateway: { value: 'http://127.0.0.1:9091', from: 'flag' },
        job: { value: 'deployctl', from: 'default' },
        service: { value: 'api', from: 'environment' },
        environment: { value: null, from: 'default' },
        timeoutSeconds: { value: 5, from: 'default' },
        strict: { value: false, from: 'default' },
        stateDir: '/state',
        auth: 'none',
        headers: [],
        tls: 'system defaults',
      },
      checks: [
        { ok: true, what: 'gateway answers' },
        { ok: false, warning: true, what: 'in memory only', fix: 'use --persistence.file' },
        { ok: false, what: '2 record(s) kept in the outbox', fix: 'deployctl flush' },
      ],
      wouldPush: 'deployctl_deployments_total{status="success"} 1\n',
      problems: 1,
      service: 'api',
      environment: 'prod',
    },
    'delete --dry-run': { kind: 'delete', what: '', plan: 'DELETE http://127.0.0.1:9091/metrics/job@base64/x' },
    'delete answered no': { kind: 'delete', what: 'the group of api in prod', declined: 'no' },
    'delete interrupted': { kind: 'delete', what: 'the group of api in prod', declined: 'interrupted' },
    deleted: { kind: 'delete', what: 'the group of api in prod', deleted: grouping },
  };
  for (const [name, view] of Object.entries(views)) {
    it(name, () => {
      const text = collect();
      const textCode = renderReading(view, text.shown, text.reporter, now);
      const json = collect({ json: true });
      const jsonCode = renderReading(view, json.shown, json.reporter, now);
      expect(jsonCode).toBe(textCode);
      expect({ exitCode: textCode, text: text.out, json: json.out }).toMatchSnapshot();
    });
  }
});

describe('what an error shows', () => {
  it('a usage error with its hint, as text and as the one JSON document (stderr beside a command)', () => {
    const error = new UsageError('--status must be success, failure or cancelled', 'e.g. --status success');
    const text = collect();
    renderError(error, error.exitCode, { json: false, stack: false }, text.reporter);
    const json = collect({ json: true });
    renderError(error, error.exitCode, { json: true, stack: false }, json.reporter);
    const beside = collect({ json: true }, true);
    renderError(error, error.exitCode, { json: true, stack: false }, beside.reporter);
    expect({ text: text.out, json: json.out, beside: beside.out }).toMatchSnapshot();
  });

  it('an unexpected error names itself so, with its stack only when asked', () => {
    const error = new TypeError('x is undefined');
    error.stack = 'TypeError: x is undefined\n    at here';
    const plain = collect();
    renderError(error, 1, { json: false, stack: false }, plain.reporter);
    const verbose = collect();
    renderError(error, 1, { json: false, stack: true }, verbose.reporter);
    expect(plain.out.stderr).toBe('deployctl: unexpected error: x is undefined\n');
    expect(verbose.out.stderr).toBe(`${plain.out.stderr}TypeError: x is undefined\n    at here\n`);
  });

  it('a record not made is a warning, and under --json the one document', () => {
    const error = new DeployctlError('no service given', 2, 'give --service or DEPLOYCTL_SERVICE');
    const text = collect();
    renderNotRecorded(error, { json: false, stack: false }, text.reporter);
    const beside = collect({ json: true }, true);
    renderNotRecorded(error, { json: true, stack: false }, beside.reporter);
    expect({ text: text.out, beside: beside.out }).toMatchSnapshot();
  });
});
