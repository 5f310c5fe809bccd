import { describe, expect, it } from 'vitest';
import { chooseContract } from '../../src/backends/index.js';

const URL = 'http://127.0.0.1:9090';

describe('chooseContract', () => {
  it('reads the ledger when the store holds only remote-write ledger series', () => {
    expect(chooseContract({ ledger: 2, totals: 0, exportedTotals: 0 }, URL)).toEqual({
      backend: 'remote-write',
      notes: [`reading remote-write ledger series from ${URL}`],
    });
  });

  it('reads the Pushgateway totals when they are there, with or without honor_labels', () => {
    for (const counts of [
      { ledger: 0, totals: 1, exportedTotals: 0 },
      { ledger: 0, totals: 0, exportedTotals: 3 },
    ])
      expect(chooseContract(counts, URL)).toEqual({
        backend: 'pushgateway',
        notes: [`reading Pushgateway totals scraped by ${URL}`],
      });
  });

  it('holding both, reads the configured Pushgateway and names the ledger groups left aside', () => {
    expect(chooseContract({ ledger: 1, totals: 2, exportedTotals: 0 }, URL)).toEqual({
      backend: 'pushgateway',
      notes: [
        `reading Pushgateway totals scraped by ${URL}`,
        `${URL} also holds remote-write ledger series of 1 group; add --remote-write (or DEPLOYCTL_REMOTE_WRITE_URL) to read them`,
      ],
    });
  });

  it('holding neither, reads as configured and says nothing', () => {
    expect(chooseContract({ ledger: 0, totals: 0, exportedTotals: 0 }, URL)).toEqual({
      backend: 'pushgateway',
      notes: [],
    });
  });
});
