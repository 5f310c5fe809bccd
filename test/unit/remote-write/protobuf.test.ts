import protobuf from 'protobufjs';
import snappy from 'snappyjs';
import { describe, expect, it } from 'vitest';
import { encodeWriteRequest, sortedLabels, type TimeSeries } from '../../../src/backends/remote-write/protobuf.js';

// prompb/types.proto and prompb/remote.proto, the parts remote-write 1.0 uses.
const root = protobuf.parse(`
  syntax = "proto3";
  package prometheus;
  message WriteRequest { repeated TimeSeries timeseries = 1; }
  message TimeSeries { repeated Label labels = 1; repeated Sample samples = 2; }
  message Label { string name = 1; string value = 2; }
  message Sample { double value = 1; int64 timestamp = 2; }
`).root;
const WriteRequest = root.lookupType('prometheus.WriteRequest');

const series: TimeSeries[] = [
  {
    labels: sortedLabels({
      status: 'success',
      __name__: 'deployctl_deployment_finished_timestamp_seconds',
      service: 'shop/api ✓',
      environment: 'prod',
      job: 'deployctl',
    }),
    samples: [{ value: 1_767_229_200.25, timestampMs: 1_767_229_200_123 }],
  },
  {
    labels: sortedLabels({ __name__: 'x', empty: '', a: 'b' }),
    samples: [
      { value: 0, timestampMs: 0 },
      { value: -1.5, timestampMs: -5 },
    ],
  },
];

function decoded(bytes: Uint8Array) {
  return WriteRequest.toObject(WriteRequest.decode(bytes), { longs: Number, defaults: true });
}

describe('remote-write protobuf encoder', () => {
  it('decodes with protobufjs to exactly what was encoded', () => {
    expect(decoded(encodeWriteRequest(series))).toEqual({
      timeseries: [
        {
          labels: [
            { name: '__name__', value: 'deployctl_deployment_finished_timestamp_seconds' },
            { name: 'environment', value: 'prod' },
            { name: 'job', value: 'deployctl' },
            { name: 'service', value: 'shop/api ✓' },
            { name: 'status', value: 'success' },
          ],
          samples: [{ value: 1_767_229_200.25, timestamp: 1_767_229_200_123 }],
        },
        {
          labels: [
            { name: '__name__', value: 'x' },
            { name: 'a', value: 'b' },
          ],
          samples: [
            { value: 0, timestamp: 0 },
            { value: -1.5, timestamp: -5 },
          ],
        },
      ],
    });
  });

  it('writes the same bytes as protobufjs', () => {
    const message = WriteRequest.fromObject({
      timeseries: series.map((s) => ({
        labels: s.labels,
        samples: s.samples.map((x) => ({ value: x.value, timestamp: x.timestampMs })),
      })),
    });
    expect(Buffer.from(encodeWriteRequest(series))).toEqual(Buffer.from(WriteRequest.encode(message).finish()));
  });

  it('matches golden bytes', () => {
    const one: TimeSeries[] = [
      { labels: sortedLabels({ b: '2', __name__: 'm' }), samples: [{ value: 1, timestampMs: 1000 }] },
    ];
    // WriteRequest.timeseries (field 1, 37 bytes) { labels (field 1) {name "__name__", value "m"},
    // labels {name "b", value "2"}, samples (field 2) {value 1.0 (fixed64), timestamp 1000 (varint)} }
    expect(Buffer.from(encodeWriteRequest(one)).toString('hex')).toBe(
      '0a25' +
        '0a0d' +
        '0a085f5f6e616d655f5f' +
        '12016d' +
        '0a06' +
        '0a0162' +
        '120132' +
        '120c' +
        '09000000000000f03f' +
        '10e807',
    );
  });

  it('survives snappy block compression', () => {
    const bytes = encodeWriteRequest(series);
    const compressed = snappy.compress(Buffer.from(bytes));
    expect(Buffer.from(snappy.uncompress(compressed))).toEqual(Buffer.from(bytes));
  });

  it('sorts labels by name, byte order, and drops empty values', () => {
    expect(sortedLabels({ b: '1', B: '2', __name__: 'n', a: '' }).map((l) => l.name)).toEqual(['B', '__name__', 'b']);
  });
});
