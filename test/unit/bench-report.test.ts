import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BEGIN, END, type Report, withTable } from '../../bench/report.mjs';

const report: Report = {
  date: '2026-12-02T13:00:00.000Z',
  commit: 'abc1234',
  node: 'v20.20.2',
  cpus: 2,
  cpuModel: 'Test CPU',
  runs: 21,
  slowRuns: 11,
  peakMethod: 'GNU time %M',
  rows: [
    {
      id: 1,
      name: 'record vs POST',
      target: { text: '≤ 1.5×', ratio: 1.5 },
      a: { label: 'record', median: 84.5, min: 78.5, max: 89 },
      b: { label: 'POST', median: 30.25, min: 27.9, max: 34.6 },
      ratio: 84.5 / 30.25,
      met: false,
    },
    {
      id: 3,
      name: 'version vs node',
      target: { text: '≤ 1.5×', ratio: 1.5 },
      a: { label: 'version', median: 25.6, min: 22.3, max: 39.7 },
      b: { label: 'node', median: 18.8, min: 16.6, max: 28.6 },
      ratio: 25.6 / 18.8,
      met: true,
    },
    {
      id: 4,
      name: '10,000 groups',
      target: { text: '≤ 1.3×, < 150 MB', ratio: 1.3, peakMB: 150 },
      a: { label: 'record', median: 1787.2, min: 1661, max: 2400.4 },
      b: { label: 'floor', median: 913.3, min: 817.3, max: 1113 },
      ratio: 1787.2 / 913.3,
      peakMB: 122.6,
      floorPeakMB: 61.2,
      met: false,
    },
    { id: 6, name: 'remote-write', target: { text: '≤ 1.3×', ratio: 1.3 }, skipped: 'no --remote-write' },
  ],
};

const page = `# title\n\nbefore\n\n${BEGIN}\nold table\n${END}\n\nafter\n`;

describe('the performance table in docs/performance.md', () => {
  it('replaces only what lies between the markers', () => {
    const text = withTable(page, report);
    expect(text.startsWith(`# title\n\nbefore\n\n${BEGIN}\n`)).toBe(true);
    expect(text.endsWith(`${END}\n\nafter\n`)).toBe(true);
    expect(text).not.toContain('old table');
    const lines = text.split('\n');
    expect(lines).toContain(
      '| 1 | record vs POST (A: record; B: POST) | 84.5 (78.5–89.0) | 30.3 (27.9–34.6) | 2.79× | ≤ 1.5× | MISS |',
    );
    expect(lines).toContain(
      '| 3 | version vs node (A: version; B: node) | 25.6 (22.3–39.7) | 18.8 (16.6–28.6) | 1.36× | ≤ 1.5× | PASS |',
    );
    expect(lines).toContain(
      '| 4 | 10,000 groups (A: record; B: floor) | 1787 (1661–2400) | 913.3 (817.3–1113) | 1.96×; peak 123 MB (B: 61 MB) | ≤ 1.3×, < 150 MB | MISS |',
    );
    expect(lines).toContain('| 6 | remote-write | | | | ≤ 1.3× | skipped: no --remote-write |');
    expect(text).toContain(
      'Node v20.20.2, 2 × Test CPU, commit abc1234, 2026-12-02; median (min–max) of 21 runs a side (11 at 10,000 groups)',
    );
  });

  it('gives the same text when run again', () => {
    const once = withTable(page, report);
    expect(withTable(once, report)).toBe(once);
  });

  it('refuses a page without both markers, or with one twice', () => {
    expect(() => withTable(page.replace(END, ''), report)).toThrow(/once each/);
    expect(() => withTable(page.replace(BEGIN, ''), report)).toThrow(/once each/);
    expect(() => withTable(`${page}${BEGIN}\n`, report)).toThrow(/once each/);
  });

  it('is in docs/performance.md as bench/results.json gives it', () => {
    const text = readFileSync(new URL('../../docs/performance.md', import.meta.url), 'utf8');
    const results = JSON.parse(readFileSync(new URL('../../bench/results.json', import.meta.url), 'utf8')) as Report;
    expect(withTable(text, results)).toBe(text);
  });
});
