import { describe, expect, it } from 'vitest';
import { colorsOff, formatDuration, formatLeadTimes } from '../../src/cli/render/output.js';
import { renderTable } from '../../src/cli/render/table.js';

describe('formatDuration', () => {
  it.each([
    [0.0123, '0.01s'],
    [42, '42s'],
    [59.96, '60s'],
    [179.6, '3m0s'],
    [3599.7, '1h0m'],
    [7260, '2h1m'],
    [3 * 86400 + 7200, '3d2h'],
  ])('%d → %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });
});

describe('renderTable', () => {
  // Tests run without a terminal: chalk adds no escape codes.
  it('aligns cells by display width: CJK characters take two columns', () => {
    const table = renderTable(
      ['SERVICE', 'ENV', 'STATUS'],
      [
        ['支付服务', 'prod', 'success'],
        ['api', '本番', 'failure'],
      ],
    );
    expect(table.split('\n')).toEqual(['SERVICE   ENV   STATUS', '支付服务  prod  success', 'api       本番  failure']);
  });

  it('cuts the widest column with an ellipsis so that the table fits the width', () => {
    const rows = [['a-very-long-service-name-that-goes-on', 'production', 'success']];
    const table = renderTable(['SERVICE', 'ENVIRONMENT', 'STATUS'], rows, 40);
    // 37 + 11 + 7 columns and two gaps of 2 is 59: SERVICE gives up 19 columns, to 18.
    expect(table.split('\n')).toEqual([
      'SERVICE             ENVIRONMENT  STATUS',
      'a-very-long-servi…  production   success',
    ]);
    expect(Math.max(...table.split('\n').map((l) => l.length))).toBeLessThanOrEqual(40);
  });

  it('cuts CJK text on a character boundary', () => {
    const table = renderTable(['SERVICE', 'STATUS'], [['支付服务支付服务支付服务', 'success']], 20);
    // 24 + 2 + 7 is 33: SERVICE gets 11 columns, five CJK characters (10) and the ellipsis.
    expect(table.split('\n')).toEqual(['SERVICE      STATUS', '支付服务支…  success']);
  });
});

describe('colorsOff', () => {
  it('honours NO_COLOR unless FORCE_COLOR is set', () => {
    expect(colorsOff({ NO_COLOR: '1' })).toBe(true);
    expect(colorsOff({ NO_COLOR: '' })).toBe(false);
    expect(colorsOff({ NO_COLOR: '1', FORCE_COLOR: '1' })).toBe(false);
    expect(colorsOff({})).toBe(false);
  });
});

describe('formatLeadTimes', () => {
  it('lists a few, and summarises many as range and median', () => {
    expect(formatLeadTimes([60, 3600])).toBe('lead time 1m0s, 1h0m');
    const sixty = Array.from({ length: 60 }, (_, i) => (i + 1) * 60); // 1 to 60 minutes
    expect(formatLeadTimes(sixty)).toBe('lead time 1m0s to 1h0m over 60 commits, median 30m30s');
  });
});
