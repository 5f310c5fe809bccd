import type { DeploymentRecord, DeploymentSource } from '../../core/record.js';
import { parseLabelValue, parseTimestamp } from '../../core/validate.js';
import { detectCi } from './ci.js';
import { Git, insideRepository } from './git.js';

export interface MetadataFlags {
  version?: string;
  commit?: string;
  commitTime?: string;
  branch?: string;
  repository?: string;
  buildUrl?: string;
}

const FULL_SHA = /^([0-9a-f]{40}|[0-9a-f]{64})$/i;

export type DeploymentMetadata = Pick<DeploymentRecord, 'version' | 'commit' | 'source' | 'history' | 'commitTime'>;

/** Validates the metadata flags up front, before anything is started or pushed. */
export function checkMetadataFlags(flags: MetadataFlags): void {
  if (flags.version !== undefined) parseLabelValue('--version', flags.version);
  if (flags.commit !== undefined) parseLabelValue('--commit', flags.commit);
  if (flags.commitTime !== undefined) parseTimestamp('--commit-time', flags.commitTime);
  if (flags.branch !== undefined) parseLabelValue('--branch', flags.branch, { allowEmpty: true });
  if (flags.repository !== undefined) parseLabelValue('--repository', flags.repository, { allowEmpty: true });
  if (flags.buildUrl !== undefined) parseLabelValue('--build-url', flags.buildUrl, { allowEmpty: true });
}

/**
 * Version, commit, source and commit history of a deployment. Flags win; then the CI
 * environment; then git in `cwd`. Version falls back to `git describe --tags`, then the commit.
 */
export async function collectMetadata(
  flags: MetadataFlags,
  env: Record<string, string | undefined>,
  cwd: string,
  note: (message: string) => void = () => undefined,
): Promise<DeploymentMetadata> {
  checkMetadataFlags(flags);
  const ci = await detectCi(env, cwd);
  const git = new Git(cwd, note);

  const given = flags.commit ?? ci.commit ?? 'HEAD';
  // Outside a repository (a post-deploy step without a checkout) there is no git to ask. A full
  // SHA (what CI gives) needs no rev-parse first: history and describe say whether git has it.
  const inside = insideRepository(cwd, env);
  const resolved = !inside ? undefined : FULL_SHA.test(given) ? given.toLowerCase() : await git.resolveCommit(given);
  const commit = resolved ?? (given === 'HEAD' ? '' : given);
  const [history, described] = resolved
    ? await Promise.all([git.history(resolved), flags.version === undefined ? git.describe(resolved) : undefined])
    : [undefined, undefined];
  const version = flags.version ?? described ?? commit;

  const branch = flags.branch ?? ci.branch ?? '';
  const repository = flags.repository ?? ci.repository ?? '';
  const buildUrl = flags.buildUrl ?? ci.buildUrl ?? '';
  const source: DeploymentSource | undefined =
    ci.provider || branch || repository || buildUrl ? { ci: ci.provider, branch, repository, buildUrl } : undefined;

  return {
    version,
    commit,
    ...(source && { source }),
    ...(history && { history }),
    ...(flags.commitTime !== undefined && { commitTime: parseTimestamp('--commit-time', flags.commitTime) }),
  };
}
