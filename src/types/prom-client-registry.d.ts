// prom-client's Registry on its own, without the rest of the package (default metrics, cluster support).
declare module 'prom-client/lib/registry.js' {
  interface CollectedFamily {
    name: string;
    help: string;
    type: string;
    values: { metricName?: string; labels: Record<string, string>; value: number }[];
  }
  interface RegisteredFamily {
    name: string;
    help: string;
    type: string;
    get(): CollectedFamily | Promise<CollectedFamily>;
  }
  export default class Registry {
    registerMetric(metric: RegisteredFamily): void;
    metrics(): Promise<string>;
  }
}
