declare module 'env-ci' {
  interface CiEnvironment {
    isCi: boolean;
    name?: string;
    service?: string;
    commit?: string;
    branch?: string;
    build?: string;
    buildUrl?: string;
    slug?: string;
    root?: string;
  }
  export default function envCi(options?: { env?: Record<string, string>; cwd?: string }): CiEnvironment;
}
