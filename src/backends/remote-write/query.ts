import type { Reporter } from '../../cli/output.js';
import type { Settings } from '../../cli/settings.js';
import { UsageError } from '../../core/errors.js';
import { openRemoteWrite } from './index.js';
import { ledgerDoraQueries } from './promql.js';

export interface LedgerQueryApi {
  base: URL;
  query(expr: string): Promise<{ labels: Record<string, string>; value: number }[]>;
  close(): void;
}

/**
 * The store's query API as `dora` uses it: instant queries with the same credentials, tenant
 * headers and TLS options as the writes, and the ledger's PromQL.
 */
export function ledgerQueryApi(
  settings: Settings,
  reporter: Reporter,
): LedgerQueryApi & { doraQueries: typeof ledgerDoraQueries } {
  const client = openRemoteWrite(settings, reporter);
  const base = client.queryBase;
  if (!base) {
    client.close();
    throw new UsageError(
      `no query API is known for --remote-write ${client.displayUrl}`,
      "give the store's Prometheus query API with --prometheus or DEPLOYCTL_PROMETHEUS_URL",
    );
  }
  return {
    base,
    doraQueries: ledgerDoraQueries,
    async query(expr) {
      return (await client.vector(expr)).map((s) => ({ labels: s.metric, value: Number(s.value[1]) }));
    },
    close: () => client.close(),
  };
}
