export interface CiInfo {
  /** e.g. "github", "gitlab"; empty when not on CI. */
  provider: string;
  commit?: string;
  branch?: string;
  repository?: string;
  buildUrl?: string;
}

/** A build URL as it may be stored and shown: no credentials, no query. */
function cleanUrl(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    parsed.search = '';
    return parsed.toString();
  } catch {
    return undefined;
  }
}

/** What the CI environment says about this build (GitHub Actions, GitLab CI, Jenkins, CircleCI, Buildkite, Azure Pipelines, Bitbucket, …). */
export async function detectCi(env: Record<string, string | undefined>, cwd: string): Promise<CiInfo> {
  if (
    !env.CI &&
    !env.GITHUB_ACTIONS &&
    !env.GITLAB_CI &&
    !env.JENKINS_URL &&
    !env.BUILDKITE &&
    !env.TF_BUILD &&
    !env.BITBUCKET_BUILD_NUMBER &&
    !env.CIRCLECI
  ) {
    return { provider: '' };
  }
  const { default: envCi } = await import('env-ci');
  const ci = envCi({ env: env as Record<string, string>, cwd });
  if (!ci.isCi || !('service' in ci) || !ci.service) return { provider: '' };
  const info: CiInfo = { provider: ci.service };
  if (ci.commit) info.commit = ci.commit;
  if (ci.branch) info.branch = ci.branch;
  if ('slug' in ci && ci.slug) info.repository = ci.slug;
  const buildUrl = cleanUrl('buildUrl' in ci ? ci.buildUrl : undefined);
  if (buildUrl) info.buildUrl = buildUrl;
  return info;
}

/**
 * The environment the CI job deploys to, where the CI names one: GitLab's `environment:` keyword
 * (CI_ENVIRONMENT_NAME). The default for --env, after the flag, DEPLOYCTL_ENV and the config file.
 */
export function ciEnvironment(env: Record<string, string | undefined>): string | undefined {
  return env.GITLAB_CI && env.CI_ENVIRONMENT_NAME ? env.CI_ENVIRONMENT_NAME : undefined;
}
