import { describe, expect, it } from 'vitest';
import { checkIncidentLine } from '../../src/cli/commands/incident.js';
import { UsageError } from '../../src/core/errors.js';
import {
  type AlertmanagerPayload,
  alertmanagerTime,
  DEFAULT_INCIDENT_LABELS,
  describeSkipped,
  incidentRecordId,
  incidentsFromAlertmanager,
  parseAlertLabelName,
  readAlertmanagerPayload,
} from '../../src/core/incident.js';
import { parseTimestamp } from '../../src/core/validate.js';

/** An alert as Alertmanager 0.25 posts it to a webhook receiver. */
function alert(
  status: 'firing' | 'resolved',
  labels: Record<string, string>,
  startsAt: string,
  endsAt: string,
  fingerprint: string,
) {
  return {
    status,
    labels,
    annotations: { summary: 'error rate above 5%' },
    startsAt,
    endsAt,
    generatorURL: 'http://prometheus.internal:9090/graph?g0.expr=up',
    fingerprint,
  };
}

/** A webhook payload (version 4) as Alertmanager 0.25 posts it. */
function payload(alerts: ReturnType<typeof alert>[], status: 'firing' | 'resolved' = 'firing'): string {
  return JSON.stringify({
    receiver: 'deployctl-incidents',
    status,
    alerts,
    groupLabels: { alertname: 'HighErrorRate' },
    commonLabels: { alertname: 'HighErrorRate' },
    commonAnnotations: {},
    externalURL: 'http://alertmanager.internal:9093',
    version: '4',
    groupKey: '{}/{severity="page"}:{alertname="HighErrorRate"}',
    truncatedAlerts: 0,
  });
}

const ZERO = '0001-01-01T00:00:00Z';
const api = { alertname: 'HighErrorRate', service: 'api', environment: 'production', severity: 'page' };
const options = { job: 'deployctl', labels: DEFAULT_INCIDENT_LABELS };
const read = (text: string) => readAlertmanagerPayload(text, 'the payload');
const T0 = Date.parse('2026-12-05T17:00:00.123Z') / 1000;
const T1 = Date.parse('2026-12-05T17:30:05Z') / 1000;

describe('incidentsFromAlertmanager', () => {
  it('a firing alert opens an incident at its startsAt, identified by its fingerprint', () => {
    const { items, skipped } = incidentsFromAlertmanager(
      read(payload([alert('firing', api, '2026-12-05T17:00:00.123456789Z', ZERO, '7a1c2b3d4e5f6071')])),
      options,
    );
    expect(skipped).toEqual({ total: 1, skipped: 0, reasons: {} });
    expect(items).toEqual([
      {
        grouping: { job: 'deployctl', service: 'api', environment: 'production' },
        record: {
          kind: 'incident',
          id: incidentRecordId(
            { job: 'deployctl', service: 'api', environment: 'production' },
            '7a1c2b3d4e5f6071',
            'open',
            T0,
          ),
          incident: '7a1c2b3d4e5f6071',
          action: 'open',
          at: T0,
        },
      },
    ]);
  });

  it('a resolved alert opens it at startsAt and resolves it at endsAt (openedAt = startsAt)', () => {
    const { items } = incidentsFromAlertmanager(
      read(
        payload(
          [alert('resolved', api, '2026-12-05T17:00:00.123456789Z', '2026-12-05T17:30:05Z', '7a1c2b3d4e5f6071')],
          'resolved',
        ),
      ),
      options,
    );
    expect(items.map((i) => [i.record.action, i.record.at, i.record.openedAt])).toEqual([
      ['open', T0, undefined],
      ['resolve', T1, T0],
    ]);
  });

  it('the firing and the resolved payload of one alert make the same open record (a replay is a duplicate)', () => {
    const firing = incidentsFromAlertmanager(
      read(payload([alert('firing', api, '2026-12-05T17:00:00.123456789Z', ZERO, 'f1')])),
      options,
    );
    const resolved = incidentsFromAlertmanager(
      read(payload([alert('resolved', api, '2026-12-05T17:00:00.123456789Z', '2026-12-05T17:30:05Z', 'f1')])),
      options,
    );
    expect(resolved.items[0]).toEqual(firing.items[0]);
    const again = incidentsFromAlertmanager(
      read(payload([alert('resolved', api, '2026-12-05T17:00:00.123456789Z', '2026-12-05T17:30:05Z', 'f1')])),
      options,
    );
    expect(again).toEqual(resolved);
  });

  it('a mixed payload: each alert to its own group, the unlabelled skipped with one reason', () => {
    const { items, skipped } = incidentsFromAlertmanager(
      read(
        payload([
          alert('firing', api, '2026-12-05T17:00:00Z', ZERO, 'a1'),
          alert(
            'resolved',
            { ...api, service: 'web', environment: 'staging' },
            '2026-12-05T16:00:00Z',
            '2026-12-05T16:10:00Z',
            'b2',
          ),
          alert('firing', { alertname: 'DiskFull', instance: 'db1' }, '2026-12-05T17:00:00Z', ZERO, 'c3'),
          alert('firing', { alertname: 'X', service: 'api' }, '2026-12-05T17:00:00Z', ZERO, 'd4'),
        ]),
      ),
      options,
    );
    expect(items.map((i) => [i.grouping.service, i.grouping.environment, i.record.incident, i.record.action])).toEqual([
      ['api', 'production', 'a1', 'open'],
      ['web', 'staging', 'b2', 'open'],
      ['web', 'staging', 'b2', 'resolve'],
    ]);
    expect(skipped).toEqual({
      total: 4,
      skipped: 2,
      reasons: { 'without the labels service and environment': 2 },
    });
    expect(describeSkipped(skipped)).toBe(
      'skipped 2 of 4 alert(s), which open no incident: 2 without the labels service and environment',
    );
  });

  it('reads the label names it is told to', () => {
    const labels = { alertname: 'A', app: 'checkout', env: 'prod' };
    const { items, skipped } = incidentsFromAlertmanager(
      read(payload([alert('firing', labels, '2026-12-05T17:00:00Z', ZERO, 'e5')])),
      { job: 'deploys', labels: { service: 'app', environment: 'env' } },
    );
    expect(skipped.skipped).toBe(0);
    expect(items[0]?.grouping).toEqual({ job: 'deploys', service: 'checkout', environment: 'prod' });
    expect(
      incidentsFromAlertmanager(read(payload([alert('firing', labels, '2026-12-05T17:00:00Z', ZERO, 'e5')])), options)
        .items,
    ).toEqual([]);
  });

  it('skips alerts it cannot read, each counted with why', () => {
    const { items, skipped } = incidentsFromAlertmanager(
      read(
        payload([
          alert('firing', api, 'yesterday', ZERO, 'a'),
          alert('resolved', api, '2026-12-05T17:00:00Z', ZERO, 'b'),
          alert('resolved', api, '2026-12-05T17:00:00Z', '2026-12-05T16:00:00Z', 'c'),
          alert('pending' as 'firing', api, '2026-12-05T17:00:00Z', ZERO, 'd'),
          alert('firing', { ...api, service: 'bad\nname' }, '2026-12-05T17:00:00Z', ZERO, 'e'),
        ]),
      ),
      options,
    );
    expect(items).toEqual([]);
    expect(skipped.skipped).toBe(5);
    expect(Object.values(skipped.reasons).reduce((a, b) => a + b, 0)).toBe(5);
    expect(Object.keys(skipped.reasons)).toHaveLength(4);
  });

  it('without a fingerprint, the alert is identified by its labels', () => {
    const noFingerprint = { ...alert('firing', api, '2026-12-05T17:00:00Z', ZERO, ''), fingerprint: undefined };
    const text = JSON.stringify({ version: '4', alerts: [noFingerprint] });
    const first = incidentsFromAlertmanager(read(text), options).items[0]?.record.incident;
    expect(first).toMatch(/^[0-9a-f]{16}$/);
    expect(incidentsFromAlertmanager(read(text), options).items[0]?.record.incident).toBe(first);
  });
});

describe('readAlertmanagerPayload', () => {
  it.each([
    ['not JSON', '{"version": "4", alerts: []', /is not JSON/],
    ['an array', '[]', /is not a JSON object/],
    ['version 3', '{"version": "3", "alerts": []}', /version 4 \(its version is "3"\)/],
    ['no version', '{"alerts": []}', /its version is missing/],
    ['no alerts array', '{"version": "4", "alerts": {}}', /has no alerts array/],
  ])('refuses %s with a usage error', (_what, text, message) => {
    expect(() => read(text)).toThrow(UsageError);
    expect(() => read(text)).toThrow(message);
  });

  it('takes an empty alerts array', () => {
    expect(read('{"version": "4", "alerts": []}').alerts).toEqual([]);
  });
});

describe('alertmanagerTime', () => {
  it.each([
    ['2026-12-05T17:00:00Z', Date.parse('2026-12-05T17:00:00Z') / 1000],
    ['2026-12-05T17:00:00.123456789Z', Date.parse('2026-12-05T17:00:00.123Z') / 1000],
    ['2026-12-05T18:00:00.5+01:00', Date.parse('2026-12-05T17:00:00.5Z') / 1000],
  ])('reads %s', (text, seconds) => {
    expect(alertmanagerTime(text)).toBe(seconds);
  });
  it.each([ZERO, '', 'now', 5, undefined])('gives undefined for %j', (value) => {
    expect(alertmanagerTime(value)).toBeUndefined();
  });
});

describe('incidentRecordId', () => {
  const g = { job: 'deployctl', service: 'api', environment: 'production' };
  it('is made from the content, and a valid record id', () => {
    expect(incidentRecordId(g, 'f', 'open', 100)).toBe(incidentRecordId({ ...g }, 'f', 'open', 100));
    expect(incidentRecordId(g, 'f', 'open', 100)).toMatch(/^[A-Za-z0-9_-]{1,100}$/);
    const others = [
      incidentRecordId(g, 'f', 'resolve', 100),
      incidentRecordId(g, 'f', 'open', 101),
      incidentRecordId(g, 'g', 'open', 100),
      incidentRecordId({ ...g, environment: 'staging' }, 'f', 'open', 100),
      incidentRecordId({ ...g, job: 'other' }, 'f', 'open', 100),
    ];
    expect(new Set([incidentRecordId(g, 'f', 'open', 100), ...others]).size).toBe(6);
  });
});

describe('the incident command line', () => {
  it('open and resolve, default id one per service and environment', async () => {
    expect(await checkIncidentLine(['open'], {})).toEqual({ kind: 'hand', action: 'open', incident: 'default' });
    expect(await checkIncidentLine(['resolve'], { id: 'INC-42' })).toEqual({
      kind: 'hand',
      action: 'resolve',
      incident: 'INC-42',
    });
  });
  it.each([
    [[], {}, /needs an action/],
    [['close'], {}, /the action is open or resolve/],
    [['open', 'now'], {}, /one action/],
    [['open'], { fromAlertmanager: '-' }, /either open or --from-alertmanager/],
    [[], { fromAlertmanager: '-', id: 'x' }, /--id is not taken with --from-alertmanager/],
    [[], { fromAlertmanager: '-', at: '1' }, /--at is not taken/],
    [['open'], { serviceLabel: 'app' }, /--service-label is only taken with --from-alertmanager/],
    [[], { fromAlertmanager: '/nonexistent/payload.json' }, /cannot read \/nonexistent\/payload.json: ENOENT/],
    [[], { fromAlertmanager: '/x', serviceLabel: 'bad-name' }, /--service-label: "bad-name" is not a label name/],
    [['open'], { id: '' }, /--id must not be empty/],
  ] as const)('refuses %j %j', async (operands, flags, message) => {
    await expect(checkIncidentLine([...operands], flags)).rejects.toThrow(message);
    await expect(checkIncidentLine([...operands], flags)).rejects.toBeInstanceOf(UsageError);
  });

  it('--at takes Unix seconds and ISO 8601 like --finished-at', () => {
    const now = Date.parse('2026-12-05T18:00:00Z') / 1000;
    expect(parseTimestamp('--at', '2026-12-05T17:00:00Z', now)).toBe(now - 3600);
    expect(parseTimestamp('--at', String(now - 60), now)).toBe(now - 60);
    expect(() => parseTimestamp('--at', '2026-12-06T17:00:00Z', now)).toThrow(/in the future/);
  });

  it('alert label names are Prometheus label names, service and environment included', () => {
    expect(parseAlertLabelName('--service-label', 'service')).toBe('service');
    expect(() => parseAlertLabelName('--env-label', '1env')).toThrow(UsageError);
  });
});

// The payload type is what Alertmanager posts; a typed literal keeps the fixture honest.
const _typed: AlertmanagerPayload = { version: '4', alerts: [alert('firing', api, '2026-12-05T17:00:00Z', ZERO, 'x')] };
void _typed;
