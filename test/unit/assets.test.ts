import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateAssets } from '../../scripts/assets/index.js';
import { BANDS, band, bandPromql } from '../../src/core/dora/bands.js';

describe('generated assets', () => {
  it.each(generateAssets().map((a) => [a.path, a.content]))('%s is current (npm run assets)', (path, content) => {
    expect(readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8')).toBe(content);
  });

  it('has dashboards with a datasource variable and no hard-coded datasource uid', () => {
    for (const { path, content } of generateAssets().filter((a) => a.path.endsWith('.json'))) {
      const dashboard = JSON.parse(content);
      const names = dashboard.templating.list.map((v: { name: string }) => v.name);
      expect(names, path).toEqual(['datasource', 'service', 'environment']);
      const uids = new Set<string>();
      JSON.stringify(dashboard, (key, value) => {
        if (key === 'datasource' && value && typeof value === 'object' && value.type === 'prometheus')
          uids.add(value.uid);
        return value;
      });
      expect([...uids], path).toEqual(['${datasource}']);
    }
  });
});

describe('DORA bands', () => {
  it('grade each key the same way in TypeScript', () => {
    expect(band(BANDS.deploymentFrequency, 3)).toBe(4);
    expect(band(BANDS.deploymentFrequency, 0.5)).toBe(3);
    expect(band(BANDS.deploymentFrequency, 0.01)).toBe(1);
    expect(band(BANDS.leadTime, 3_600)).toBe(4);
    expect(band(BANDS.leadTime, 40 * 86_400)).toBe(1);
    expect(band(BANDS.changeFailureRate, 0.15)).toBe(4);
    expect(band(BANDS.changeFailureRate, 0.2)).toBe(3);
    expect(band(BANDS.timeToRestore, 7_200)).toBe(3);
  });

  it('and in PromQL', () => {
    expect(bandPromql(BANDS.timeToRestore, 'x')).toBe(
      '(1 + (x <= bool 3600) + (x <= bool 86400) + (x <= bool 604800))',
    );
  });
});
