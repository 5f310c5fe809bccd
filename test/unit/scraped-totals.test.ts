import { describe, expect, it } from 'vitest';
import type { Prometheus } from '../../src/adapters/prometheus.js';
import { findGatewayTarget } from '../../src/backends/pushgateway/scraped-totals.js';

/** A Prometheus that answers /api/v1/targets and /api/v1/targets/metadata with these targets (and which hold groups). */
function prometheusWith(targets: { labels: Record<string, string>; holdsGroups: boolean; interval?: string }[]) {
  return {
    async get(path: string) {
      if (path === '/api/v1/targets')
        return {
          activeTargets: targets.map((t) => ({
            labels: t.labels,
            scrapePool: t.labels.job,
            scrapeUrl: `http://${t.labels.instance}/metrics`,
            health: 'up',
            lastError: '',
            ...(t.interval && { scrapeInterval: t.interval }),
          })),
        };
      if (path === '/api/v1/targets/metadata')
        return targets.filter((t) => t.holdsGroups).map((t) => ({ target: t.labels, type: 'gauge' }));
      throw new Error(`unexpected ${path}`);
    },
  } as unknown as Prometheus;
}

const gateway = (host: string, extra: Record<string, string> = {}) => ({
  labels: { job: 'pushgateway', instance: host, ...extra },
  holdsGroups: true,
});

describe('findGatewayTarget', () => {
  it("tells this gateway's series by its target's labels other than job and instance", async () => {
    const found = await findGatewayTarget(
      prometheusWith([
        { ...gateway('gw-a:9091', { pushgateway: 'gw-a:9091' }), interval: '1m30s' },
        gateway('gw-b:9091', { pushgateway: 'gw-b:9091' }),
      ]),
      new URL('http://gw-a:9091'),
    );
    expect(found).toMatchObject({
      job: 'pushgateway',
      instance: 'gw-a:9091',
      matchers: { pushgateway: 'gw-a:9091' },
      intervalSeconds: 90,
    });
    expect(found?.ambiguous).toBeUndefined();
  });

  it('cannot tell two gateways apart when their series carry no label of their own', async () => {
    const found = await findGatewayTarget(
      prometheusWith([gateway('gw-a:9091'), gateway('gw-b:9091')]),
      new URL('http://gw-b:9091/'),
    );
    expect(found?.matchers).toEqual({});
    expect(found?.ambiguous).toBe(
      'Prometheus also scrapes the gateway "gw-a:9091" (job "pushgateway"), and the series of both carry no label of their own: nothing tells them apart',
    );
  });

  it('can when the other gateway holds no groups, or its label differs', async () => {
    const empty = await findGatewayTarget(
      prometheusWith([gateway('gw-a:9091'), { ...gateway('gw-b:9091'), holdsGroups: false }]),
      new URL('http://gw-a:9091'),
    );
    expect(empty?.ambiguous).toBeUndefined();
    const shared = await findGatewayTarget(
      prometheusWith([gateway('gw-a:9091', { cluster: 'eu' }), gateway('gw-b:9091', { cluster: 'eu' })]),
      new URL('http://gw-a:9091'),
    );
    expect(shared?.ambiguous).toContain('carry the same cluster="eu"');
  });

  it('finds no target for a gateway Prometheus does not scrape', async () => {
    expect(await findGatewayTarget(prometheusWith([gateway('gw-a:9091')]), new URL('http://gw-c:9091'))).toBe(
      undefined,
    );
  });
});
