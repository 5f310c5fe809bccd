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
  notice: (message: string) => void = () => undefined,
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
  let version = flags.version ?? described ?? commit;
  if (resolved && flags.version === undefined && described === undefined && history?.some((node) => node.shallow)) {
    // A shallow clone sees no tag: a short commit reads as a version, a full SHA does not.
    version = resolved.slice(0, 12);
    notice(
      `this shallow clone shows no tag, so the version is the short commit ${version}; fetch the tags (actions/checkout with fetch-depth: 0, or git fetch --tags) or give --version`,
    );
  }
  // Said in CI (a post-deploy step without a checkout) and on a terminal; a script's own log stays as it was.
  if (!inside && (Boolean(env.CI) || ci.provider !== '' || process.stderr.isTTY === true)) {
    const missing = [
      ...(version === '' ? ['version'] : []),
      ...(commit === '' ? ['commit'] : []),
      // A commit that git does not have gets its own note from lead time.
      ...(commit === '' && flags.commitTime === undefined ? ['lead time'] : []),
    ];
    if (missing.length > 0) {
      const gives = [
        ...(version === '' ? ['--version'] : []),
        ...(commit === '' ? ['--commit'] : []),
        ...(commit === '' && flags.commitTime === undefined ? ['--commit-time (for lead time)'] : []),
      ];
      notice(
        `not in a git checkout (${cwd}): no ${missing.join(', ').replace(/, ([^,]*)$/, ' or $1')} recorded; give ${gives.join(', ')}, or run deployctl in the repository's checkout`,
      );
    }
  }

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
