import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const example = new URL('../../examples/prometheus/prometheus.yml', import.meta.url).pathname;

describe('examples/prometheus', () => {
  it('has a config that promtool accepts', () => {
    const output = execFileSync('promtool', ['check', 'config', example], { encoding: 'utf8' });
    expect(output).toContain('SUCCESS');
  });

  it('scrapes the gateway with honor_labels: true', () => {
    expect(readFileSync(example, 'utf8')).toMatch(/job_name: pushgateway\n(?:.*\n)*?\s+honor_labels: true/);
  });
});
