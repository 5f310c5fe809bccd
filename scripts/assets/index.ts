import { deploymentsDashboard, doraDashboard } from './dashboards.js';
import { remoteWriteAssets } from './remote-write.js';
import { rulesYaml } from './rules.js';

/** Files generated from the shared PromQL (src/dora/): `npm run assets` writes them, a test checks they are current. */
export function generateAssets(): { path: string; content: string }[] {
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  return [
    { path: 'grafana-dashboards/deployments.json', content: json(deploymentsDashboard()) },
    { path: 'grafana-dashboards/dora.json', content: json(doraDashboard()) },
    { path: 'examples/prometheus/deployctl-rules.yml', content: rulesYaml() },
    ...remoteWriteAssets(),
  ];
}
