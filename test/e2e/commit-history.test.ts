import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployctl, scrape } from '../helpers/cli.js';
import {
  buildRepository,
  type Deploy,
  expectedChanges,
  type Graph,
  readGraphFixture,
} from '../helpers/commit-graph.js';
import { select } from '../helpers/exposition.js';
import { eventually, startPrometheus } from '../helpers/prometheus.js';
import { type RunningServer, startPushgateway, tempDir } from '../helpers/pushgateway.js';
import { RECEIVERS, type RunningReceiver } from '../helpers/victoria-metrics.js';

// Lead time and rollbacks of whole histories, on every backend, against an oracle computed from
// each history's own commit graph: a scripted one with a branch deployed before its merge, a
// merge, a rollback, a roll-forward and a redeploy; a group adopted mid-history and rolled back;
// and the release history of prometheus/node_exporter (v0.16.0 to v1.0.1, with the release
// branch of v0.18.1), rebuilt here from its commit graph.

const HOUR = 3_600;
const now = Math.floor(Date.now() / 1000);
const workdir = tempDir();
afterAll(() => workdir.remove());

interface History {
  graph: Graph;
  deploys: Deploy[];
}

/** A graph shifted so that its newest commit is a day old: deployments land in the stores' recent past. */
function recent(graph: Graph): Graph {
  const newest = Math.max(...[...graph.values()].map((c) => c.time));
  const shift = now - 86_400 - newest;
  return new Map([...graph].map(([name, c]) => [name, { parents: c.parents, time: c.time + shift }]));
}

function scripted(commits: Record<string, string[]>): Graph {
  return recent(
    new Map(Object.entries(commits).map(([name, parents], i) => [name, { parents, time: 1_700_000_000 + i * HOUR }])),
  );
}

const releases = readGraphFixture(new URL('../fixtures/node-exporter-releases.txt', import.meta.url));

const HISTORIES: Record<string, History> = {
  'a branch deployed before its merge, a merge, a rollback, a roll-forward and a redeploy': {
    // m0 ← m1 ← m2 ← M (merges f1, a branch from m1) ← m3
    graph: scripted({ m0: [], m1: ['m0'], f1: ['m1'], m2: ['m1'], M: ['m2', 'f1'], m3: ['M'] }),
    deploys: [
      { commit: 'm0', status: 'success' },
      { commit: 'f1', status: 'success' },
      { commit: 'm2', status: 'success' },
      { commit: 'M', status: 'failure' },
      { commit: 'M', status: 'success' },
      { commit: 'm2', status: 'success' },
      { commit: 'm3', status: 'success' },
      { commit: 'm3', status: 'success' },
    ],
  },
  'a group adopted mid-history and rolled back': {
    graph: scripted({ c1: [], c2: ['c1'], c3: ['c2'], c4: ['c3'] }),
    deploys: [
      { commit: 'c3', status: 'success' },
      { commit: 'c1', status: 'success' },
      { commit: 'c3', status: 'success' },
      { commit: 'c4', status: 'success' },
    ],
  },
  "node_exporter's releases v0.16.0 to v1.0.1": {
    graph: recent(releases.graph),
    deploys: releases.tags.map(([, commit]) => ({ commit, status: 'success' as const })),
  },
};

/** Deploy i of a history finishes at this time: ten minutes apart, the last ten minutes ago. */
const finishedAt = (count: number) => (i: number) => now - (count - i) * 600;

describe('the oracle', () => {
  it("counts node_exporter's v0.18.0 as 86 new commits, as git rev-list does", () => {
    const { graph, deploys } = HISTORIES["node_exporter's releases v0.16.0 to v1.0.1"]!;
    const upTo = (n: number) => expectedChanges(graph, deploys.slice(0, n), finishedAt(deploys.length));
    // v0.16.0 is the group's first deployment: the deployed commit alone.
    expect(upTo(1).leadTimes).toHaveLength(1);
    expect(upTo(3).leadTimes.length - upTo(2).leadTimes.length).toBe(86);
    expect(upTo(6)).toMatchObject({ rollbacks: 0 });
    expect(upTo(6).leadTimes).toHaveLength(1 + 87 + 86 + 5 + 233 + 10);
  });
});

interface DoraRow {
  deployments: Record<string, number>;
  rollbacks: number;
  leadTimeSeconds: { value: number | null };
  changeFailureRate: { value: number | null };
}

type Backend = {
  env: (stateDir: string) => Record<string, string>;
  observed: (service: string) => Promise<{ count: number; sum: number; rollbacks: number }>;
};

const BACKENDS: Record<string, () => Promise<{ backend: Backend; stop: () => Promise<void> }>> = {
  pushgateway: async () => {
    const gateway: RunningServer = await startPushgateway();
    const dir = join(workdir.path, 'pushgateway-prometheus');
    mkdirSync(dir, { recursive: true });
    const prometheus = await startPrometheus(dir, gateway.url);
    return {
      backend: {
        env: (stateDir) => ({
          DEPLOYCTL_PUSHGATEWAY_URL: gateway.url,
          DEPLOYCTL_PROMETHEUS_URL: prometheus.url,
          DEPLOYCTL_STATE_DIR: stateDir,
        }),
        async observed(service) {
          const samples = await scrape(gateway.url);
          const one = (name: string) => select(samples, name, { service })[0]?.value ?? 0;
          return {
            count: one('deployctl_lead_time_seconds_count'),
            sum: one('deployctl_lead_time_seconds_sum'),
            rollbacks: one('deployctl_rollbacks_total'),
          };
        },
      },
      stop: async () => {
        await prometheus.stop();
        await gateway.stop();
      },
    };
  },
  ...Object.fromEntries(
    (Object.keys(RECEIVERS) as (keyof typeof RECEIVERS)[]).map((name) => [
      name,
      async () => {
        const receiver: RunningReceiver = await RECEIVERS[name](join(workdir.path, name));
        const total = async (expr: string) => {
          const vector = (await receiver.query(expr)) as { value: [number, string] }[];
          return vector.length ? Number(vector[0]!.value[1]) : 0;
        };
        return {
          backend: {
            env: (stateDir) => ({
              DEPLOYCTL_REMOTE_WRITE_URL: receiver.writeUrl,
              DEPLOYCTL_PROMETHEUS_URL: receiver.url,
              DEPLOYCTL_STATE_DIR: stateDir,
            }),
            async observed(service) {
              const sel = `{service="${service}"}`;
              return {
                count: await total(`sum(sum_over_time(deployctl_deployment_lead_time_seconds_count${sel}[1d]))`),
                sum: await total(`sum(sum_over_time(deployctl_deployment_lead_time_seconds_sum${sel}[1d]))`),
                rollbacks: await total(
                  `sum(count_over_time(deployctl_deployment_rollback_timestamp_seconds${sel}[1d]))`,
                ),
              };
            },
          },
          stop: () => receiver.stop(),
        };
      },
    ]),
  ),
};

describe.each(Object.keys(BACKENDS))('lead time and rollbacks on %s', (name) => {
  let backend: Backend;
  let stop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    ({ backend, stop } = await BACKENDS[name]!());
  }, 60_000);
  afterAll(async () => {
    await stop?.();
  });

  it.each(Object.keys(HISTORIES))(
    '%s: every commit counted once, every rollback recognised',
    async (title) => {
      const { graph, deploys } = HISTORIES[title]!;
      const service = `h${Object.keys(HISTORIES).indexOf(title)}-${name}`;
      const repo = join(workdir.path, `${name}-${service}`);
      const shas = buildRepository(repo, graph);
      const at = finishedAt(deploys.length);
      const env = backend.env(join(workdir.path, `${name}-${service}-state`));
      for (const [i, d] of deploys.entries()) {
        const result = await deployctl(
          [
            'record',
            ...[
              '-s',
              service,
              '-e',
              'prod',
              '--status',
              d.status,
              '--version',
              d.commit,
              '--commit',
              shas.get(d.commit)!,
            ],
            ...['--finished-at', String(at(i)), '--timeout', '10'],
          ],
          { env, cwd: repo },
        );
        expect(result.exitCode, result.stderr).toBe(0);
        expect(result.stderr).not.toContain('is kept');
      }
      const expected = expectedChanges(graph, deploys, at);
      const want = {
        count: expected.leadTimes.length,
        sum: expected.leadTimes.reduce((a, b) => a + b, 0),
        rollbacks: expected.rollbacks,
      };
      const seen = await eventually(
        () => backend.observed(service),
        (v) => v.count === want.count && v.rollbacks === want.rollbacks,
        20_000,
      );
      expect({ ...seen, sum: Math.round(seen.sum) }).toEqual({ ...want, sum: Math.round(want.sum) });

      // What dora and status say of the history: the same rollbacks, mean lead time and change failure rate.
      const failures = deploys.filter((d) => d.status === 'failure').length;
      const successes = deploys.length - failures;
      const read = ['-s', service, '-e', 'prod', '--json', '--timeout', '5'];
      const dora = await eventually(
        async () => {
          const result = await deployctl(['dora', '--window', '1d', ...read], { env });
          return result.exitCode === 0 ? (JSON.parse(result.stdout) as { rows: DoraRow[] }).rows[0] : undefined;
        },
        (row) => row?.rollbacks === want.rollbacks && row.deployments.success === successes,
        30_000,
      );
      expect(dora).toMatchObject({
        deployments: { success: successes, failure: failures },
        rollbacks: want.rollbacks,
        changeFailureRate: { value: (failures + want.rollbacks) / deploys.length },
      });
      expect(dora!.leadTimeSeconds.value).toBeCloseTo(want.sum / want.count, 3);
      const status = await deployctl(['status', ...read], { env });
      expect(status.exitCode, status.stderr).toBe(0);
      const [group] = JSON.parse(status.stdout) as { rollbacks: number; deployments: Record<string, number> }[];
      expect(group).toMatchObject({ rollbacks: want.rollbacks, deployments: { success: successes } });
      expect(group!.deployments.failure ?? 0).toBe(failures);
    },
    240_000,
  );
});
