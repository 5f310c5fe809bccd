import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { groupFileName } from '../../src/recorder/state-dir.js';
import { deployctl, deployments, gatewayEnv, gatewaySample, hasGroup, keptRecords, scrape } from '../helpers/cli.js';
import { freePort, startPushgateway, useGatewayAndWorkdir } from '../helpers/pushgateway.js';

/**
 * The golden rule around the outbox: local faults (a read-only state directory, odd files), dry
 * runs of every command, kept records and their targets, quarantine, a large outbox, and
 * problems of deployctl's surroundings. Exact counts on the real gateway, exact exit codes.
 */
const stack = useGatewayAndWorkdir();
const { workdir } = stack;

const cli = (args: string[], env: Record<string, string> = {}, cwd = workdir.path) =>
  deployctl(args, {
    env: gatewayEnv(stack.gateway.url, join(workdir.path, 'state'), env),
    cwd,
    timeout: 30_000,
  });

const counted = (service: string, status = 'success', url = stack.gateway.url) => deployments(url, service, status);
const sample = (service: string, name: string) => gatewaySample(stack.gateway.url, name, { service });

const warnings = (stderr: string) => stderr.split('\n').filter((line) => line.startsWith('deployctl: warning:'));

/** A read-only tmpfs mounted by this test (it runs as root); undefined when mounting is not permitted. */
const mounts: string[] = [];
function readOnlyDir(name: string): string | undefined {
  const dir = join(workdir.path, name);
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  mounts.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of mounts) execFileSync('umount', [dir]);
});
const canMount = (() => {
  try {
    execFileSync('mount', ['--version'], { stdio: 'ignore' });
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
})();

describe('local faults never change the outcome', () => {
  it.skipIf(!canMount)(
    'a read-only state directory: the record still lands, with one warning; run keeps the command’s exit code',
    async () => {
      const mounted = readOnlyDir('readonly');
      if (!mounted) throw new Error('mount -t tmpfs -o ro failed although running as root');
      const env = { DEPLOYCTL_STATE_DIR: join(mounted, 'state') };
      for (const stateDir of [mounted, join(mounted, 'state')]) {
        const record = await cli(
          ['record', '-s', `ro-${stateDir === mounted ? 'top' : 'sub'}`, '-e', 'prod', '--status', 'success'],
          { DEPLOYCTL_STATE_DIR: stateDir },
        );
        expect(record.exitCode).toBe(0);
        expect(warnings(record.stderr)).toHaveLength(1);
        expect(record.stderr).toMatch(
          /^deployctl: warning: success of ro-\w+ in prod could not be kept on disk before sending \((EROFS|ENOENT)\); it was sent\n$/,
        );
        expect(await counted(`ro-${stateDir === mounted ? 'top' : 'sub'}`)).toBe(1);
      }

      const run = await cli(['run', '-s', 'ro-run', '-e', 'prod', '--', 'sh', '-c', 'exit 3'], env);
      expect(run.exitCode).toBe(3);
      expect(await counted('ro-run', 'failure')).toBe(1);
      expect(warnings(run.stderr)).toHaveLength(1);
      expect(run.stderr).toContain('could not be kept');

      const step = await cli(['step', 'migrate', '-s', 'ro-run', '-e', 'prod', '--', 'sh', '-c', 'exit 4'], env);
      expect(step.exitCode).toBe(4);
      expect(step.stderr).not.toContain('unexpected error');

      // start cannot keep its note for finish, but the deployment is marked in progress all the same.
      const start = await cli(['start', '-s', 'ro-start', '-e', 'prod'], env);
      expect(start.exitCode).toBe(0);
      expect(start.stderr).not.toContain('not recorded');
      expect(await sample('ro-start', 'deployctl_deployment_in_progress')).toBe(1);
      const finish = await cli(['finish', '-s', 'ro-start', '-e', 'prod', '--status', 'success'], env);
      expect(finish.exitCode).toBe(0);
      expect(await counted('ro-start')).toBe(1);
      expect(await sample('ro-start', 'deployctl_deployment_in_progress')).toBe(0);
      expect(readdirSync(mounted)).toEqual([]);
    },
  );

  const oddStates: [string, (stateDir: string) => void][] = [
    [
      'a file named outbox/corrupt',
      (dir) => (
        mkdirSync(join(dir, 'outbox'), { recursive: true }),
        writeFileSync(join(dir, 'outbox', 'corrupt'), '\u0000garbage')
      ),
    ],
    [
      'an outbox that is a file',
      (dir) => (mkdirSync(dir, { recursive: true }), writeFileSync(join(dir, 'outbox'), 'not a directory')),
    ],
    ['a state directory that is a file', (dir) => writeFileSync(dir, 'not a directory')],
    [
      'directories where files are expected',
      (dir) => {
        const group = groupFileName({ job: 'deployctl', service: 'odd', environment: 'prod' });
        mkdirSync(join(dir, 'started', `${group}.json`), { recursive: true });
        mkdirSync(join(dir, 'outbox', '00000000000000-deadbeef-deadbeef-x.json'), { recursive: true });
        mkdirSync(join(dir, 'outbox', 'quarantine'), { recursive: true });
      },
    ],
  ];
  it.each(oddStates)('%s: nothing crashes, exit codes unchanged, records land', async (what, prepare) => {
    const stateDir = join(workdir.path, `odd-${what.replace(/\W+/g, '-')}`);
    prepare(stateDir);
    const env = { DEPLOYCTL_STATE_DIR: stateDir };
    const service = `odd-${createHash('sha256').update(what).digest('hex').slice(0, 6)}`;
    const results = [
      [await cli(['run', '-s', service, '-e', 'prod', '--', 'sh', '-c', 'exit 3'], env), 3],
      [await cli(['step', 'build', '-s', service, '-e', 'prod', '--', 'sh', '-c', 'exit 5'], env), 5],
      [await cli(['record', '-s', service, '-e', 'prod', '--status', 'success'], env), 0],
      [await cli(['start', '-s', service, '-e', 'prod'], env), 0],
      [await cli(['finish', '-s', service, '-e', 'prod', '--status', 'success'], env), 0],
    ] as const;
    for (const [result, code] of results) {
      expect(result.exitCode).toBe(code);
      expect(result.stderr).not.toMatch(/unexpected error|not recorded|\n\s+at /);
    }
    expect(await counted(service, 'failure')).toBe(1);
    expect(await counted(service)).toBe(2);
    const flush = await cli(['flush'], env);
    expect([0, 1]).toContain(flush.exitCode);
    expect(flush.stderr).not.toMatch(/unexpected error|\n\s+at /);
  });
});

/** Every path under dir with its type, size and modification time: what a dry run must not change. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (path: string) => {
    const st = statSync(path);
    out.push(
      `${path.slice(dir.length)} ${st.isDirectory() ? 'd' : 'f'} ${st.isDirectory() ? '' : st.size} ${st.mtimeMs}`,
    );
    if (st.isDirectory()) for (const name of readdirSync(path).sort()) walk(join(path, name));
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

/** The gateway's groups as it serves them on /api/v1/metrics, in a stable order (it serves them in any). */
const gatewayGroups = async (url = stack.gateway.url) => {
  const body = (await (await fetch(`${url}/api/v1/metrics`)).json()) as { data: { labels: Record<string, string> }[] };
  return body.data.map((group) => JSON.stringify(group)).sort();
};

/** A valid kept record, format 2, as deployctl writes it (KeptRecord in src/outbox.ts). */
function keptRecord(targetUrl: string, service: string, overrides: Record<string, unknown> = {}) {
  const id = randomUUID();
  return {
    id,
    body: {
      format: 2,
      keptAt: Date.now() / 1000 - 3600,
      pid: 999_999,
      host: hostname(),
      target: { backend: 'pushgateway', url: targetUrl },
      grouping: { job: 'deployctl', service, environment: 'prod' },
      record: {
        kind: 'deployment',
        id,
        status: 'success',
        labels: {},
        finishedAt: Date.now() / 1000 - 3600,
        version: 'v1',
        commit: '',
      },
      ...overrides,
    },
  };
}

const tag = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 8);
/** The file name deployctl gives a kept record: time, target, group, id. */
const keptName = (targetUrl: string, service: string, id: string, ms = Date.now() - 3_600_000) =>
  `${String(ms).padStart(14, '0')}-${tag(`pushgateway ${targetUrl}`)}-${groupFileName({ job: 'deployctl', service, environment: 'prod' }).slice(0, 8)}-${id}.json`;

describe('--dry-run is dry everywhere', () => {
  it('no command starts a process, writes or deletes a file, or changes the gateway', async () => {
    const stateDir = join(workdir.path, 'dry');
    const env = { DEPLOYCTL_STATE_DIR: stateDir };
    // Something on the gateway and in the state directory that a wet run would change.
    expect((await cli(['record', '-s', 'dry', '-e', 'prod', '--status', 'success'], env)).exitCode).toBe(0);
    expect((await cli(['start', '-s', 'dry', '-e', 'prod'], env)).exitCode).toBe(0);
    const elsewhere = 'http://127.0.0.1:9/';
    const other = keptRecord(elsewhere, 'dry-kept');
    writeFileSync(join(stateDir, 'outbox', keptName(elsewhere, 'dry-kept', other.id)), JSON.stringify(other.body));
    const own = keptRecord(`${stack.gateway.url}/`, 'dry-own');
    writeFileSync(
      join(stateDir, 'outbox', keptName(`${stack.gateway.url}/`, 'dry-own', own.id)),
      JSON.stringify(own.body),
    );
    writeFileSync(join(stateDir, 'outbox', '00000000000001-broken.json'), '{"format":2,');

    const marker = join(workdir.path, 'dry-marker');
    const before = { files: listing(stateDir), gateway: await gatewayGroups() };
    const commands: [string[], number][] = [
      [['record', '-s', 'dry', '-e', 'prod', '--status', 'failure'], 0],
      [['run', '-s', 'dry', '-e', 'prod', '--', 'touch', marker], 0],
      [['run', '-s', 'dry', '-e', 'prod', '--shell', '--', `touch ${marker}`], 0],
      [['step', 'build', '-s', 'dry', '-e', 'prod', '--', 'touch', marker], 0],
      [['start', '-s', 'dry', '-e', 'prod'], 0],
      [['finish', '-s', 'dry', '-e', 'prod', '--status', 'success'], 0],
      [['finish', '-s', 'dry', '-e', 'prod'], 0],
      [['flush'], 0],
      [['delete', '-s', 'dry', '-e', 'prod', '--yes'], 0],
      [['delete', '-s', 'dry', '-e', 'prod'], 0],
    ];
    for (const [args, code] of commands) {
      const result = await cli(
        [
          ...args.slice(0, args.indexOf('--') === -1 ? args.length : args.indexOf('--')),
          '--dry-run',
          ...(args.includes('--') ? args.slice(args.indexOf('--')) : []),
        ],
        env,
      );
      expect({ args, exitCode: result.exitCode, stderr: result.stderr }).toMatchObject({ exitCode: code });
    }
    const doctor = await cli(['doctor', '-s', 'dry', '-e', 'prod', '--dry-run'], env);
    expect(doctor.stderr).not.toContain('unexpected error');
    expect(existsSync(marker)).toBe(false);
    expect(listing(stateDir)).toEqual(before.files);
    expect(await gatewayGroups()).toEqual(before.gateway);

    // flush --dry-run says what it would send, and where.
    const flush = await cli(['flush', '--dry-run'], env);
    expect(flush.stdout).toContain(
      `would send 1 kept record(s) to ${elsewhere} (not the configured gateway: without its credentials):\n  success of dry-kept in prod\n`,
    );
    expect(flush.stdout).toContain(
      `would send 1 kept record(s) to ${stack.gateway.url}/:\n  success of dry-own in prod\n`,
    );
    expect(flush.stderr).toMatch(
      /00000000000001-broken\.json is not a record deployctl can send \(not valid JSON\); it would be quarantined/,
    );
    const run = await cli(['run', '-s', 'dry', '-e', 'prod', '--dry-run', '--', 'touch', marker], env);
    expect(run.stderr).toContain(
      `deployctl: would run: touch ${marker}\ndeployctl: and, if it succeeds:\nPOST ${stack.gateway.url}/metrics/job@base64/`,
    );
    expect(run.stderr).toContain('deployctl_deployments_total{status="success"} 2');
    expect(listing(stateDir)).toEqual(before.files);
    expect(await gatewayGroups()).toEqual(before.gateway);
  });
});

describe('kept records go only to their own target', () => {
  it('a record kept for gateway A is never delivered to gateway B, and reaches A exactly once when A is back', async () => {
    const portA = await freePort();
    const urlA = `http://127.0.0.1:${portA}`;
    const stateDir = join(workdir.path, 'targets');
    const env = { DEPLOYCTL_STATE_DIR: stateDir };
    const down = await cli(['record', '-s', 'tgt', '-e', 'prod', '--status', 'failure', '--timeout', '0.5'], {
      ...env,
      DEPLOYCTL_PUSHGATEWAY_URL: urlA,
    });
    expect(down.exitCode).toBe(0);
    expect(down.stderr).toContain('is not on the gateway yet');
    expect(keptRecords(stateDir)).toHaveLength(1);

    const toB = await cli(['record', '-s', 'tgt', '-e', 'prod', '--status', 'success'], env);
    expect(toB.exitCode).toBe(0);
    expect(toB.stderr).toContain(
      '1 kept record(s) are meant for other gateways; deployctl flush sends each to its own',
    );
    const flushB = await cli(['flush', '--timeout', '0.5'], env);
    expect(flushB.exitCode).toBe(1);
    expect(flushB.stdout).toContain(`${urlA}/: sent 0 kept record(s); 1 still kept`);
    expect(await counted('tgt')).toBe(1);
    expect(await counted('tgt', 'failure')).toBe(0);
    expect(keptRecords(stateDir)).toHaveLength(1);

    const gatewayA = await startPushgateway([], { port: portA });
    try {
      const flush = await cli(['flush'], env);
      expect(flush.exitCode).toBe(0);
      expect(flush.stdout).toContain(`${urlA}/: sent 1 kept record(s); 0 still kept`);
      const again = await cli(['flush'], { ...env, DEPLOYCTL_PUSHGATEWAY_URL: urlA });
      expect(again.stdout).toContain('nothing kept');
      expect(await counted('tgt', 'failure', urlA)).toBe(1);
      expect(await counted('tgt', 'success', urlA)).toBe(0);
      expect(await counted('tgt', 'failure')).toBe(0);
      expect(await counted('tgt')).toBe(1);
    } finally {
      await gatewayA.stop();
    }
  });
});

describe('quarantine', () => {
  it('moves invalid files aside with a warning and never sends them; a valid record of the same group lands', async () => {
    const stateDir = join(workdir.path, 'quarantine');
    const env = { DEPLOYCTL_STATE_DIR: stateDir };
    const first = await cli(['record', '-s', 'quar', '-e', 'prod', '--status', 'success', '--json'], env);
    const target = (JSON.parse(first.stdout) as { target: string }).target;
    expect(target).toBe(`${stack.gateway.url}/`);
    const outbox = join(stateDir, 'outbox');
    mkdirSync(outbox, { recursive: true });
    const badStatus = keptRecord(target, 'quar');
    (badStatus.body.record as Record<string, unknown>).status = 'exploded';
    const formatOne = keptRecord(target, 'quar', { format: 1 });
    const names = {
      json: keptName(target, 'quar', 'badjson'),
      status: keptName(target, 'quar', badStatus.id),
      old: keptName(target, 'quar', formatOne.id),
    };
    writeFileSync(join(outbox, names.json), '{"format":2,"target":');
    writeFileSync(join(outbox, names.status), JSON.stringify(badStatus.body));
    writeFileSync(join(outbox, names.old), JSON.stringify(formatOne.body));

    const record = await cli(['record', '-s', 'quar', '-e', 'prod', '--status', 'failure'], env);
    expect(record.exitCode).toBe(0);
    const q = join(outbox, 'quarantine');
    expect(record.stderr).toContain(
      `${join(outbox, names.json)} is not a record deployctl can send (not valid JSON); moved to ${join(q, names.json)}, nothing was sent for it`,
    );
    expect(record.stderr).toContain(
      `${join(outbox, names.status)} is not a record deployctl can send (a deployment with invalid fields); moved to ${join(q, names.status)}`,
    );
    expect(record.stderr).toContain(
      `${join(outbox, names.old)} is not a record deployctl can send (kept by an older deployctl that did not note where it was meant to go); moved to ${join(q, names.old)}`,
    );
    expect(warnings(record.stderr)).toHaveLength(3);
    expect(readdirSync(q).sort()).toEqual(Object.values(names).sort());
    expect(keptRecords(stateDir)).toEqual([]);
    expect(await counted('quar')).toBe(1);
    expect(await counted('quar', 'failure')).toBe(1);
    const applied = (await scrape(stack.gateway.url))
      .filter((s) => s.name === 'deployctl_applied_record_timestamp_seconds' && s.labels.service === 'quar')
      .map((s) => s.labels.record_id);
    expect(applied).toHaveLength(2);
    expect(applied).not.toContain(badStatus.id);
    expect(applied).not.toContain(formatOne.id);
    // Quarantined files stay where they were moved: flush neither sends nor warns about them again.
    const flush = await cli(['flush'], env);
    expect(flush.exitCode).toBe(0);
    expect(flush.stdout).toContain('nothing kept');
    expect(await counted('quar')).toBe(1);
  });
});

describe('a large outbox', () => {
  it('5,000 kept files for other groups and targets do not make a new record miss a 5 s budget; nothing kept is dropped', async () => {
    const stateDir = join(workdir.path, 'large');
    const outbox = join(stateDir, 'outbox');
    mkdirSync(outbox, { recursive: true });
    const own = `${stack.gateway.url}/`;
    const elsewhere = 'http://127.0.0.1:9/';
    const SAME_TARGET = 1_000;
    const OTHER_TARGET = 4_000;
    for (let i = 0; i < SAME_TARGET + OTHER_TARGET; i++) {
      const url = i < SAME_TARGET ? own : elsewhere;
      const service = `bulk-${i}`;
      const kept = keptRecord(url, service);
      writeFileSync(
        join(outbox, keptName(url, service, kept.id, Date.now() - 3_600_000 + i)),
        JSON.stringify(kept.body),
      );
    }
    const started = Date.now();
    const result = await cli(['record', '-s', 'large-new', '-e', 'prod', '--status', 'success', '--timeout', '5'], {
      DEPLOYCTL_STATE_DIR: stateDir,
    });
    const elapsed = Date.now() - started;
    console.log(`large outbox: record took ${elapsed} ms`);
    expect(result.exitCode).toBe(0);
    expect(elapsed).toBeLessThan(5_000 + 1_500);
    expect(await counted('large-new')).toBe(1);
    // Some of this gateway's kept records went along, within what was left of the budget; the
    // warning says how many are still kept, and together they are all there is: none dropped.
    const groups = (await (await fetch(`${stack.gateway.url}/api/v1/metrics`)).json()) as {
      data: { labels: Record<string, string> }[];
    };
    const sent = groups.data.filter((g) => /^bulk-\d+$/.test(g.labels.service ?? '')).length;
    const match = /(\d+) record\(s\) for this gateway are still kept/.exec(result.stderr);
    const stillKept = match ? Number(match[1]) : 0;
    expect(stillKept + sent).toBe(SAME_TARGET);
    expect(result.stderr).toContain(
      `${OTHER_TARGET} kept record(s) are meant for other gateways; deployctl flush sends each to its own`,
    );
    expect(keptRecords(stateDir)).toHaveLength(SAME_TARGET + OTHER_TARGET - sent);
    const samples = await scrape(stack.gateway.url);
    for (const g of groups.data.filter((g) => /^bulk-\d+$/.test(g.labels.service ?? ''))) {
      expect(
        samples.filter(
          (s) =>
            s.name === 'deployctl_deployments_total' &&
            s.labels.service === g.labels.service &&
            s.labels.status === 'success',
        )[0]?.value,
      ).toBe(1);
    }
  }, 40_000);
});

describe('a long backlog of the same group', () => {
  it('3,000 kept records of the new record’s own group: the new one lands within its budget, older ones go first, none dropped', async () => {
    const stateDir = join(workdir.path, 'backlog');
    const outbox = join(stateDir, 'outbox');
    mkdirSync(outbox, { recursive: true });
    const own = `${stack.gateway.url}/`;
    const KEPT = 3_000;
    for (let i = 0; i < KEPT; i++) {
      const kept = keptRecord(own, 'backlog');
      writeFileSync(
        join(outbox, keptName(own, 'backlog', kept.id, Date.now() - 3_600_000 + i)),
        JSON.stringify(kept.body),
      );
    }
    const started = Date.now();
    const result = await cli(['record', '-s', 'backlog', '-e', 'prod', '--status', 'failure', '--timeout', '5'], {
      DEPLOYCTL_STATE_DIR: stateDir,
    });
    const elapsed = Date.now() - started;
    expect(result.exitCode).toBe(0);
    expect(elapsed).toBeLessThan(5_000 + 1_500);
    expect(await counted('backlog', 'failure')).toBe(1);
    const sent = await counted('backlog');
    const stillKept = Number(/(\d+) record\(s\) for this gateway are still kept/.exec(result.stderr)?.[1] ?? 0);
    console.log(`same-group backlog: record took ${elapsed} ms, sent ${sent} older, ${stillKept} still kept`);
    expect(sent).toBeGreaterThan(0);
    expect(result.stderr).toContain(`also sent ${sent} record(s) kept earlier`);
    expect(sent + stillKept).toBe(KEPT);
    expect(keptRecords(stateDir)).toHaveLength(stillKept);
  }, 30_000);
});

describe('problems of the surroundings are warnings', () => {
  it('an unknown config key is only a warning; an invalid value is "not recorded"; --strict stops with 2 before the command runs', async () => {
    const dir = join(workdir.path, 'badconfig');
    mkdirSync(dir, { recursive: true });
    const marker = join(dir, 'ran');
    writeFileSync(
      join(dir, '.deployctlrc.json'),
      JSON.stringify({ service: 'cfg', environment: 'prod', colour: 'blue' }),
    );
    const unknown = await cli(['run', '--', 'sh', '-c', `touch ${marker}; exit 3`], {}, dir);
    expect(unknown.exitCode).toBe(3);
    expect(existsSync(marker)).toBe(true);
    expect(unknown.stderr).toContain('colour is not a deployctl setting; ignored');
    expect(await counted('cfg', 'failure')).toBe(1);

    writeFileSync(
      join(dir, '.deployctlrc.json'),
      JSON.stringify({ service: 'cfg', environment: 'prod', timeout: 'soon' }),
    );
    for (const [args, code] of [
      [['run', '--', 'sh', '-c', `touch ${marker}-2; exit 4`], 4],
      [['step', 'build', '--', 'sh', '-c', `touch ${marker}-3; exit 0`], 0],
      [['record', '--status', 'success'], 0],
    ] as const) {
      const result = await cli([...args], {}, dir);
      expect(result.exitCode).toBe(code);
      expect(result.stderr).toMatch(
        /^deployctl: warning: not recorded: invalid config file .*\.deployctlrc\.json:\n {2}timeout: must be a number of seconds, not "soon"\n/,
      );
    }
    expect(existsSync(`${marker}-2`)).toBe(true);
    expect(existsSync(`${marker}-3`)).toBe(true);
    expect(await counted('cfg', 'failure')).toBe(1);
    expect(await counted('cfg')).toBe(0);

    const strict = await cli(['run', '--strict', '--', 'sh', '-c', `touch ${marker}-4`], {}, dir);
    expect(strict.exitCode).toBe(2);
    expect(existsSync(`${marker}-4`)).toBe(false);
    const strictRecord = await cli(['record', '--status', 'success', '--strict'], {}, dir);
    expect(strictRecord.exitCode).toBe(2);
    expect(await counted('cfg')).toBe(0);
  });

  it('a missing DEPLOYCTL_ENV: run runs and its exit code wins; record warns and exits 0; --strict gives 2 and runs nothing', async () => {
    const marker = join(workdir.path, 'noenv-ran');
    const env = { DEPLOYCTL_SERVICE: 'noenv' };
    const run = await cli(['run', '--', 'sh', '-c', `touch ${marker}; exit 7`], env);
    expect(run.exitCode).toBe(7);
    expect(existsSync(marker)).toBe(true);
    expect(run.stderr).toBe(
      'deployctl: warning: not recorded: no environment given\ndeployctl: warning: use --env, DEPLOYCTL_ENV or "environment" in the config file\n',
    );
    const step = await cli(['step', 'build', '--', 'sh', '-c', 'exit 6'], env);
    expect(step.exitCode).toBe(6);
    const record = await cli(['record', '--status', 'success'], env);
    expect(record.exitCode).toBe(0);
    expect(record.stderr).toContain('not recorded: no environment given');
    const start = await cli(['start'], env);
    expect(start.exitCode).toBe(0);

    const strictRun = await cli(['run', '--strict', '--', 'sh', '-c', `touch ${marker}-strict`], env);
    expect(strictRun.exitCode).toBe(2);
    expect(existsSync(`${marker}-strict`)).toBe(false);
    expect(
      (await cli(['run', '--', 'sh', '-c', `touch ${marker}-strict`], { ...env, DEPLOYCTL_STRICT: 'true' })).exitCode,
    ).toBe(2);
    expect(existsSync(`${marker}-strict`)).toBe(false);
    expect((await cli(['record', '--status', 'success', '--strict'], env)).exitCode).toBe(2);
    expect(await hasGroup(stack.gateway.url, 'noenv')).toBe(false);
    // A command line deployctl cannot parse is the one thing that stops the deploy.
    const bad = await cli([
      'run',
      '-s',
      'noenv',
      '-e',
      'prod',
      '--kill-after',
      'soon',
      '--',
      'sh',
      '-c',
      `touch ${marker}-bad`,
    ]);
    expect(bad.exitCode).toBe(2);
    expect(existsSync(`${marker}-bad`)).toBe(false);
  });

  it('an unstartable command: exit 127, nothing counted, nothing in progress', async () => {
    const stateDir = join(workdir.path, 'unstartable');
    const result = await cli(['run', '-s', 'unstartable', '-e', 'prod', '--', './does-not-exist'], {
      DEPLOYCTL_STATE_DIR: stateDir,
    });
    expect(result.exitCode).toBe(127);
    expect(result.stderr).toBe('deployctl: ./does-not-exist: command not found; nothing recorded\n');
    expect(await hasGroup(stack.gateway.url, 'unstartable')).toBe(false);
    expect(keptRecords(stateDir)).toEqual([]);
    writeFileSync(join(workdir.path, 'not-executable.sh'), '#!/bin/sh\nexit 0\n', { mode: 0o644 });
    const denied = await cli(
      ['run', '-s', 'unstartable', '-e', 'prod', '--', join(workdir.path, 'not-executable.sh')],
      { DEPLOYCTL_STATE_DIR: stateDir },
    );
    expect(denied.exitCode).toBe(126);
    expect(await hasGroup(stack.gateway.url, 'unstartable')).toBe(false);
    expect(readFileSync(join(workdir.path, 'not-executable.sh'), 'utf8')).toContain('exit 0');
  });
});
