import * as v from 'valibot';

const nonEmpty = v.pipe(v.string(), v.trim(), v.minLength(1, 'must not be empty'));

/** The keys a config file may set; anything else is refused by name. */
export const ConfigSchema = v.strictObject({
  pushgateway: v.optional(v.pipe(v.string(), v.url('must be a URL such as http://localhost:9091'))),
  remoteWrite: v.optional(v.pipe(v.string(), v.url('must be a URL such as http://localhost:9090/api/v1/write'))),
  prometheus: v.optional(v.pipe(v.string(), v.url('must be a URL such as http://localhost:9090'))),
  job: v.optional(nonEmpty),
  service: v.optional(nonEmpty),
  environment: v.optional(nonEmpty),
  timeout: v.optional(v.pipe(v.number('must be a number of seconds'), v.gtValue(0, 'must be more than 0'), v.maxValue(600, 'must be at most 600 seconds'))),
  strict: v.optional(v.boolean('must be true or false')),
  stateDir: v.optional(nonEmpty),
  auth: v.optional(
    v.strictObject({
      username: v.optional(v.string('must be a string')),
      password: v.optional(v.string('must be a string')),
      passwordFile: v.optional(nonEmpty),
      token: v.optional(v.string('must be a string')),
      tokenFile: v.optional(nonEmpty),
    }),
  ),
  headers: v.optional(v.record(v.string(), v.string('must be a string'))),
  tls: v.optional(
    v.strictObject({
      caFile: v.optional(nonEmpty),
      certFile: v.optional(nonEmpty),
      keyFile: v.optional(nonEmpty),
      insecure: v.optional(v.boolean('must be true or false')),
    }),
  ),
  labels: v.optional(v.record(v.string(), v.string('must be a string'))),
});

export type FileConfig = v.InferOutput<typeof ConfigSchema>;

export interface ConfigProblem {
  key: string;
  message: string;
}

export function validateConfig(input: unknown): { config?: FileConfig; problems: ConfigProblem[] } {
  const result = v.safeParse(ConfigSchema, input);
  if (result.success) return { config: result.output, problems: [] };
  return {
    problems: result.issues.map((issue) => {
      const key = v.getDotPath(issue) ?? '(top level)';
      const message =
        issue.type === 'strict_object'
          ? 'is not a deployctl setting'
          : `${issue.message.replace(/^Invalid type: Expected (.*) but received .*$/, 'expected $1')}, not ${issue.received}`;
      return { key, message };
    }),
  };
}
