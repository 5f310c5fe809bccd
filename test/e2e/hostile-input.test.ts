import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { Gateway } from '../../src/backends/pushgateway/client.js';
import { renderExposition } from '../../src/backends/pushgateway/exposition.js';
import { UsageError } from '../../src/core/errors.js';
import { parseLabelValue } from '../../src/core/validate.js';
import { BIN, deployctl, scrape } from '../helpers/cli.js';
import { select } from '../helpers/exposition.js';
import { useGatewayAndWorkdir } from '../helpers/pushgateway.js';

const stack = useGatewayAndWorkdir();
const { workdir } = stack;

/** A small deterministic generator (mulberry32), so a failure can be reproduced from its seed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = [
  '<',
  '>',
  '&',
  '"',
  '\\',
  '\\n',
  '\n',
  '\r',
  '\t',
  '/',
  '=',
  '{',
  '}',
  ',',
  ' ',
  '',
  '😀',
  'é',
  '\u0000',
  '\u007f',
  '\u0085',
  '\u2028',
  '\ud800',
  '\udfff',
  '${HOME}',
  '$(id)',
  '`id`',
  "'",
  'a',
  'Z',
  '0',
  '%2F',
  '@base64',
  '\ufeff',
  '\ufffd',
];

function hostile(next: () => number): string {
  const length = Math.floor(next() * 12);
  let text = '';
  for (let i = 0; i < length; i++) text += PIECES[Math.floor(next() * PIECES.length)];
  if (next() < 0.05) text += 'x'.repeat(1100);
  return text;
}

describe('hostile values', () => {
  it('are refused up front or stored on the real gateway byte for byte (500 generated values)', async () => {
    const next = random(20261122);
    const client = new Gateway({ url: stack.gateway.url, timeoutMs: 60_000 });
    let stored = 0;
    let refused = 0;
    try {
      for (let i = 0; i < 500; i++) {
        const value = hostile(next);
        let accepted: string;
        try {
          accepted = parseLabelValue('--version', value, { allowEmpty: true });
        } catch (error) {
          expect(error).toBeInstanceOf(UsageError);
          refused += 1;
          continue;
        }
        const service = `fuzz/${i}/${value.slice(0, 40)}`;
        const grouping = { job: 'deployctl', service, environment: value };
        const body = await renderExposition([
          {
            name: 'deployctl_deployment_info',
            help: 'fuzz',
            type: 'gauge',
            series: [{ labels: { version: accepted }, value: 1 }],
          },
        ]);
        await client.push(grouping, body);
        const state = await client.readGroup(grouping);
        const series = state.get('deployctl_deployment_info')?.series[0];
        expect(series?.labels.version, JSON.stringify(value)).toBe(value);
        stored += 1;
      }
    } finally {
      client.close();
    }
    expect(stored).toBeGreaterThan(100);
    expect(refused).toBeGreaterThan(100);
  });

  it('through the binary: refused with exit code 2 and nothing pushed, or pushed intact', async () => {
    const env = { DEPLOYCTL_PUSHGATEWAY_URL: stack.gateway.url, DEPLOYCTL_STATE_DIR: `${workdir.path}/state` };
    const cases: [string, boolean][] = [
      ['quote " and back\\slash', true],
      ['{brace}=,comma', true],
      ['über/ünïcødé ☁ 😀', true],
      ['line\nbreak', false],
      ['carriage\rreturn', false],
      ['tab\there', false],
      ['bell\u0007', false],
      ['x'.repeat(1025), false],
    ];
    for (const [index, [value, legal]] of cases.entries()) {
      const service = `binary-${index}`;
      const result = await deployctl(
        ['record', '-s', service, '-e', 'prod', '--status', 'success', '--version', value, '--label', `note=${value}`],
        { env, cwd: workdir.path },
      );
      const info = select(await scrape(stack.gateway.url), 'deployctl_deployment_info', { service });
      if (legal) {
        expect(result.exitCode, JSON.stringify(value)).toBe(0);
        expect(info[0]?.labels.version).toBe(value);
        expect(info[0]?.labels.note).toBe(value);
      } else {
        expect(result.exitCode, JSON.stringify(value)).toBe(2);
        expect(result.stderr).toMatch(/(--version|--label note) .*(control character|limit is 1024)/);
        expect(info).toEqual([]);
      }
    }
  });

  it('refuses invalid UTF-8 in an argument with exit code 2', async () => {
    const result = await execa(
      'sh',
      [
        '-c',
        `"${process.execPath}" "${BIN}" record -s utf8 -e prod --status success --version "$(printf 'v1-\\377\\376')"`,
      ],
      {
        env: { PATH: process.env.PATH ?? '', HOME: workdir.path, DEPLOYCTL_PUSHGATEWAY_URL: stack.gateway.url },
        extendEnv: false,
        reject: false,
      },
    );
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('is not valid UTF-8');
    expect(select(await scrape(stack.gateway.url), 'deployctl_deployment_info', { service: 'utf8' })).toEqual([]);
  });
});
