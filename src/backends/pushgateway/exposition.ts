import Registry from 'prom-client/lib/registry.js';
import type { Family } from './model.js';

interface PromClientValue {
  metricName?: string;
  labels: Record<string, string>;
  value: number;
}

function promClientValues(family: Family): PromClientValue[] {
  if (family.type !== 'histogram') {
    return family.series.map(({ labels, value }) => ({ labels, value }));
  }
  return family.series.flatMap(({ labels, buckets, sum, count }) => [
    ...buckets.map((bucket) => ({
      metricName: `${family.name}_bucket`,
      labels: { ...labels, le: String(bucket.le) },
      value: bucket.count,
    })),
    { metricName: `${family.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: count },
    { metricName: `${family.name}_sum`, labels, value: sum },
    { metricName: `${family.name}_count`, labels, value: count },
  ]);
}

/**
 * The classic Prometheus text format (not OpenMetrics, which the gateway stores as untyped),
 * rendered by a dedicated prom-client Registry that holds only these families.
 */
export async function renderExposition(families: readonly Family[]): Promise<string> {
  const registry = new Registry();
  for (const family of families) {
    const values = promClientValues(family);
    registry.registerMetric({
      name: family.name,
      help: family.help,
      type: family.type,
      get: () => ({ ...family, values }),
    });
  }
  return registry.metrics();
}
