import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { keptBookkeeping } from '../../src/backends/pushgateway/doctor.js';
import { BOOKKEEPING_DROP_REGEX, FAMILIES, PER_DEPLOYMENT_BOOKKEEPING } from '../../src/core/families.js';

const example = (file: string) =>
  parse(readFileSync(new URL(`../../examples/prometheus/${file}`, import.meta.url), 'utf8')) as {
    scrape_configs: { job_name: string; metric_relabel_configs?: { regex?: string; action?: string }[] }[];
  };

/** Every metric name deployctl's families put on the gateway (histograms as their three series). */
const NAMES = Object.values(FAMILIES).flatMap((f) =>
  f.type === 'histogram' ? ['_bucket', '_sum', '_count'].map((s) => `${f.name}${s}`) : [f.name],
);

describe("the example scrape job's metric_relabel_configs", () => {
  it.each(['prometheus.yml', 'prometheus-compose.yml'])(
    '%s drops exactly the per-deployment bookkeeping, nothing dashboards or rules read',
    (file) => {
      const job = example(file).scrape_configs.find((j) => j.job_name === 'pushgateway')!;
      const drop = job.metric_relabel_configs?.find((r) => r.action === 'drop');
      expect(drop?.regex).toBe(BOOKKEEPING_DROP_REGEX);
      const regex = new RegExp(`^(?:${drop!.regex})$`);
      expect(NAMES.filter((name) => regex.test(name)).sort()).toEqual(
        PER_DEPLOYMENT_BOOKKEEPING.map((f) => f.name).sort(),
      );
    },
  );
});

/** A scrape job as Prometheus's /api/v1/status/config gives it back. */
const dumped = (relabel: string) =>
  [
    'global:',
    '  scrape_interval: 15s',
    'scrape_configs:',
    '- job_name: other',
    '  metric_relabel_configs:',
    '  - source_labels: [__name__]',
    '    separator: ;',
    '    regex: deployctl_.*',
    '    replacement: $1',
    '    action: drop',
    '- job_name: pushgateway',
    '  honor_labels: true',
    '  scrape_interval: 15s',
    relabel,
    '  static_configs:',
    '  - targets:',
    '    - localhost:9091',
    '',
  ]
    .filter((line) => line !== '')
    .join('\n');

describe('keptBookkeeping', () => {
  const both = PER_DEPLOYMENT_BOOKKEEPING.map((f) => f.name);

  it("reads the job's own rules, as Prometheus writes them back", () => {
    const rule = [
      '  metric_relabel_configs:',
      '  - source_labels: [__name__]',
      '    separator: ;',
      `    regex: ${BOOKKEEPING_DROP_REGEX}`,
      '    replacement: $1',
      '    action: drop',
    ].join('\n');
    expect(keptBookkeeping(dumped(rule), 'pushgateway')).toEqual([]);
    expect(keptBookkeeping(dumped(''), 'pushgateway')).toEqual(both);
    expect(keptBookkeeping(dumped(rule), 'missing')).toEqual(both);
  });

  it('follows keep rules, quoted regexes, and leaves rules on other labels alone', () => {
    const keep = [
      '  metric_relabel_configs:',
      '  - source_labels: [__name__]',
      "    regex: '(deployctl_deployments_total|push_time_seconds)'",
      '    action: keep',
    ].join('\n');
    expect(keptBookkeeping(dumped(keep), 'pushgateway')).toEqual([]);
    const other = [
      '  metric_relabel_configs:',
      '  - source_labels: [service]',
      '    regex: .*',
      '    action: drop',
      '  - source_labels: [__name__]',
      '    regex: deployctl_applied_record_timestamp_seconds',
      '    action: drop',
    ].join('\n');
    expect(keptBookkeeping(dumped(other), 'pushgateway')).toEqual([
      FAMILIES.deployedCommits.name,
      FAMILIES.rememberedDeployments.name,
      FAMILIES.rememberedIncidents.name,
    ]);
  });
});
