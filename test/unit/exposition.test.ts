import { describe, expect, it } from 'vitest';
import { renderExposition } from '../../src/backends/pushgateway/exposition.js';

describe('renderExposition', () => {
  it('renders counters, gauges and histograms in the classic text format', async () => {
    const text = await renderExposition([
      { name: 'a_total', help: 'A.', type: 'counter', series: [{ labels: { status: 'success' }, value: 3 }] },
      {
        name: 'g',
        help: 'G.',
        type: 'gauge',
        series: [{ labels: { version: 'say "hi" \\ there' }, value: 1795336925.5 }],
      },
      {
        name: 'h',
        help: 'H.',
        type: 'histogram',
        series: [
          {
            labels: {},
            buckets: [
              { le: 1, count: 1 },
              { le: 5, count: 2 },
            ],
            sum: 6.5,
            count: 3,
          },
        ],
      },
    ]);
    expect(text).toBe(
      [
        '# HELP a_total A.',
        '# TYPE a_total counter',
        'a_total{status="success"} 3',
        '',
        '# HELP g G.',
        '# TYPE g gauge',
        'g{version="say \\"hi\\" \\\\ there"} 1795336925.5',
        '',
        '# HELP h H.',
        '# TYPE h histogram',
        'h_bucket{le="1"} 1',
        'h_bucket{le="5"} 2',
        'h_bucket{le="+Inf"} 3',
        'h_sum 6.5',
        'h_count 3',
        '',
      ].join('\n'),
    );
  });
});
