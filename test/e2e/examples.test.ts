import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const dir = new URL('../../examples/prometheus/', import.meta.url).pathname;
const promtool = (...args: string[]) => execFileSync('promtool', args, { encoding: 'utf8', cwd: dir });

describe('examples/prometheus', () => {
  it.each(['prometheus.yml', 'prometheus-compose.yml'])(
    '%s is a config that promtool accepts, with its rule file',
    (file) => {
      const output = promtool('check', 'config', file);
      expect(output).toContain(`SUCCESS: ${file} is valid prometheus config file syntax`);
      expect(output).toContain('SUCCESS: 45 rules found');
    },
  );

  it.each(['prometheus.yml', 'prometheus-compose.yml'])('%s scrapes the gateway with honor_labels: true', (file) => {
    expect(readFileSync(`${dir}/${file}`, 'utf8')).toMatch(/job_name: pushgateway\n(?:.*\n)*?\s+honor_labels: true/);
  });

  it('has rules that promtool accepts', () => {
    expect(promtool('check', 'rules', 'deployctl-rules.yml')).toContain('SUCCESS: 45 rules found');
  });

  it('has alerts that fire, and stay quiet, when promtool test rules says they should', () => {
    const files = readdirSync(`${dir}/tests`).map((f) => `tests/${f}`);
    expect(files.length).toBeGreaterThanOrEqual(2);
    const output = promtool('test', 'rules', ...files);
    expect(output.match(/SUCCESS/g)).toHaveLength(files.length);
    // promtool evaluates every rule at every step of each test's weeks of series: tens of seconds on a busy machine.
  }, 180_000);
});
