import { describe, expect, it } from 'vitest';
import { durationMs, victoriaMetricsFlags } from '../../../src/backends/remote-write/doctor.js';

describe("doctor's reading of VictoriaMetrics' /flags", () => {
  it('takes the flags VictoriaMetrics lists, one -name="value" a line', () => {
    const flags = victoriaMetricsFlags({
      status: 200,
      body: '-dedup.minScrapeInterval="1ms"\n-httpListenAddr="127.0.0.1:8428"\n-retentionPeriod="100y"\n',
    });
    expect(flags?.get('dedup.minScrapeInterval')).toBe('1ms');
    expect(flags?.get('retentionPeriod')).toBe('100y');
  });

  it('knows a VictoriaMetrics started with every flag at its default: /flags lists none, so no deduplication', () => {
    const flags = victoriaMetricsFlags({ status: 200, body: '' });
    expect(flags).toBeDefined();
    expect(flags?.has('dedup.minScrapeInterval')).toBe(false);
  });

  it('does not take a page that is not a flag list (no /flags, or a web UI there) for VictoriaMetrics', () => {
    expect(victoriaMetricsFlags({ status: 404, body: '404 page not found\n' })).toBeUndefined();
    expect(
      victoriaMetricsFlags({ status: 200, body: '<!doctype html><html><title>Prometheus</title></html>' }),
    ).toBeUndefined();
    expect(victoriaMetricsFlags(undefined)).toBeUndefined();
  });
});

describe("VictoriaMetrics' durations", () => {
  it.each([
    ['1ms', 1],
    ['0', 0],
    ['0s', 0],
    ['30s', 30_000],
    ['1m30s', 90_000],
    ['1.5s', 1_500],
    ['15', 15_000],
    ['500us', 0.5],
    ['soon', Number.NaN],
  ])('%s is %d ms', (value, ms) => {
    expect(durationMs(value)).toBe(ms);
  });
});
