import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { editDistance } from '../../src/cli/config/schema.js';
import { resolveSettings } from '../../src/cli/settings.js';
import { SettingsError } from '../../src/core/errors.js';
import { tempDir } from '../helpers/pushgateway.js';

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => dir.remove());

/** The message resolveSettings fails with for a config file holding `text`. */
async function failure(name: string, text: string): Promise<{ file: string; message: string }> {
  const file = join(dir.path, name);
  writeFileSync(file, text);
  const error = await resolveSettings({}, {}, dir.path).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SettingsError);
  return { file, message: (error as Error).message };
}

async function warnings(name: string, config: unknown, env: Record<string, string> = {}) {
  const file = join(dir.path, name);
  writeFileSync(file, JSON.stringify(config));
  return { file, warnings: (await resolveSettings({}, env, dir.path)).warnings };
}

describe('a config file that does not parse', () => {
  it('YAML: the file, line, column and the parser reason', async () => {
    const { file, message } = await failure(
      '.deployctlrc.yaml',
      'pushgateway: http://gw:9091\nservice: [api\nenvironment: prod\n',
    );
    expect(message).toBe(`${file}:3:1: missed comma between flow collection entries`);
  });

  it('YAML in an rc file without extension, a bad indentation', async () => {
    const { file, message } = await failure('.deployctlrc', 'service: api\n  environment: prod\n');
    expect(message).toBe(`${file}:2:14: bad indentation of a mapping entry`);
  });

  it('JSON: the line and column of the offset the parser names, and its reason', async () => {
    const { file, message } = await failure(
      '.deployctlrc.json',
      '{\n  "pushgateway": "http://gw:9091",\n  "job": "a",,\n}\n',
    );
    expect(message).toBe(`${file}:3:14: Expected double-quoted property name`);
  });

  it('JSON cut short: the end of the file', async () => {
    const { file, message } = await failure('.deployctlrc.json', '{\n  "service": "api"\n');
    expect(message).toBe(`${file}:3:1: Expected ',' or '}' after property value`);
  });
});

describe('an unknown key', () => {
  it('gets the known key it is a typo of, and a word on the default target', async () => {
    const { file, warnings: said } = await warnings('.deployctlrc.json', { pushgatway: 'http://gw:9091' });
    expect(said).toEqual([
      `${file}: pushgatway is not a deployctl setting; ignored (did you mean pushgateway?)`,
      `no pushgateway or remoteWrite is set, so records go to the default http://localhost:9091: pushgatway in ${file} was not recognised`,
    ]);
  });

  it('in another spelling (snake case) or nested, read from the schema', async () => {
    const { file, warnings: said } = await warnings('.deployctlrc.json', {
      remote_write: 'http://rw:9090/api/v1/write',
      tls: { ca_file: '/x' },
      auth: { usrname: 'u' },
    });
    expect(said).toEqual([
      `${file}: remote_write is not a deployctl setting; ignored (did you mean remoteWrite?)`,
      `${file}: tls.ca_file is not a deployctl setting; ignored (did you mean tls.caFile?)`,
      `${file}: auth.usrname is not a deployctl setting; ignored (did you mean auth.username?)`,
      `no pushgateway or remoteWrite is set, so records go to the default http://localhost:9091: remote_write in ${file} was not recognised`,
    ]);
  });

  it('far from every known key: no guess; no word on the target when one is set or the key is not about it', async () => {
    const { file, warnings: said } = await warnings(
      '.deployctlrc.json',
      { colour: 'red', gatewayAddress: 'x' },
      {
        DEPLOYCTL_PUSHGATEWAY_URL: 'http://gw:9091',
      },
    );
    expect(said).toEqual([
      `${file}: colour is not a deployctl setting; ignored`,
      `${file}: gatewayAddress is not a deployctl setting; ignored`,
    ]);
    const unrelated = await warnings('.deployctlrc.json', { colour: 'red' });
    expect(unrelated.warnings).toEqual([`${file}: colour is not a deployctl setting; ignored`]);
  });
});

describe('an invalid value', () => {
  it('names the file, the key and what is wrong', async () => {
    const { file, message } = await failure('.deployctlrc.json', JSON.stringify({ timeout: 'five' }));
    expect(message).toBe(`invalid config file ${file}:\n  timeout: must be a number of seconds, not "five"`);
  });
});

describe('editDistance', () => {
  it('counts insertions, deletions, replacements and swaps of neighbours', () => {
    expect(editDistance('pushgatway', 'pushgateway')).toBe(1);
    expect(editDistance('pushgaetway', 'pushgateway')).toBe(1);
    expect(editDistance('jb', 'job')).toBe(1);
    expect(editDistance('', 'job')).toBe(3);
    expect(editDistance('colour', 'tls')).toBe(5);
  });
});

describe('the one rule for a bad config file', () => {
  /** The commands named in backquotes in a piece of text. */
  const commands = (text: string) => [...text.matchAll(/`([a-z]+)`/g)].map((m) => m[1]).sort();
  const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

  it('is stated alike in the README, the failure modes and the commands', () => {
    const table = read('docs/failure-modes.md').split('### A bad config file: one rule')[1]!;
    const recording = commands(/^\| recording: (.*?) \|/m.exec(table)![1]!);
    const reading = commands(/^\| reading: (.*?) \|/m.exec(table)![1]!);
    expect(recording).toEqual(['finish', 'flush', 'incident', 'record', 'run', 'start', 'step']);
    expect(reading).toEqual(['delete', 'doctor', 'dora', 'outbox', 'status', 'verify']);
    const readme = read('README.md').replace(/\n/g, ' ');
    const rule =
      /A bad config file .*?follows one rule: the recording commands \((.*?)\) warn and go on \(exit 2 only with `--strict`\), the reading commands \((.*?)\) exit 2/.exec(
        readme,
      );
    expect(rule).not.toBeNull();
    expect(commands(rule![1]!)).toEqual(recording);
    expect(commands(rule![2]!)).toEqual(reading);
    const docs = read('docs/commands.md').replace(/\n/g, ' ');
    const said = /the reading commands \((.*?)\) exit 2; the recording commands \((.*?)\) warn/.exec(docs);
    expect(commands(said![1]!)).toEqual(reading);
    expect(commands(said![2]!)).toEqual(recording);
  });
});
