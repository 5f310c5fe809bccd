import * as v from 'valibot';

const nonEmpty = v.pipe(v.string(), v.trim(), v.minLength(1, 'must not be empty'));

/** The keys a config file may set; anything else is ignored with a warning that names it. */
const ConfigSchema = v.object({
  pushgateway: v.optional(v.pipe(v.string(), v.url('must be a URL such as http://localhost:9091'))),
  remoteWrite: v.optional(v.pipe(v.string(), v.url('must be a URL such as http://localhost:9090/api/v1/write'))),
  prometheus: v.optional(v.pipe(v.string(), v.url('must be a URL such as http://localhost:9090'))),
  job: v.optional(nonEmpty),
  service: v.optional(nonEmpty),
  environment: v.optional(nonEmpty),
  timeout: v.optional(
    v.pipe(
      v.number('must be a number of seconds'),
      v.gtValue(0, 'must be more than 0'),
      v.maxValue(600, 'must be at most 600 seconds'),
    ),
  ),
  strict: v.optional(v.boolean('must be true or false')),
  stateDir: v.optional(nonEmpty),
  auth: v.optional(
    v.object({
      username: v.optional(v.string('must be a string')),
      password: v.optional(v.string('must be a string')),
      passwordFile: v.optional(nonEmpty),
      token: v.optional(v.string('must be a string')),
      tokenFile: v.optional(nonEmpty),
    }),
  ),
  headers: v.optional(v.record(v.string(), v.string('must be a string'))),
  tls: v.optional(
    v.object({
      caFile: v.optional(nonEmpty),
      certFile: v.optional(nonEmpty),
      keyFile: v.optional(nonEmpty),
      insecure: v.optional(v.boolean('must be true or false')),
    }),
  ),
  labels: v.optional(v.record(v.string(), v.string('must be a string'))),
  verify: v.optional(
    v.object({
      checks: v.optional(
        v.array(
          v.object({
            name: nonEmpty,
            query: nonEmpty,
            max: v.optional(v.pipe(v.number('must be a number'), v.finite('must be a finite number'))),
            min: v.optional(v.pipe(v.number('must be a number'), v.finite('must be a finite number'))),
          }),
        ),
      ),
      alertmanager: v.optional(v.pipe(v.string(), v.url('must be a URL such as http://localhost:9093'))),
      serviceLabel: v.optional(nonEmpty),
      environmentLabel: v.optional(nonEmpty),
    }),
  ),
  incident: v.optional(
    v.object({
      serviceLabel: v.optional(nonEmpty),
      environmentLabel: v.optional(nonEmpty),
    }),
  ),
});

export type FileConfig = v.InferOutput<typeof ConfigSchema>;

export interface ConfigProblem {
  key: string;
  message: string;
}

/** Keys whose values are secret or may carry a secret (a URL with a password): never echoed. */
const SECRET_KEY = /^(auth|headers)\.|^pushgateway$|^verify\.alertmanager$/;

/** The keys of the input that the schema does not know, as dot paths. */
function unknownKeys(input: unknown): string[] {
  const objectKeys = (schema: v.ObjectSchema<v.ObjectEntries, undefined>) => Object.keys(schema.entries);
  const isPlain = (value: unknown): value is Record<string, unknown> =>
    typeof value === 'object' && value !== null && !Array.isArray(value);
  if (!isPlain(input)) return [];
  const unknown: string[] = [];
  const known = objectKeys(ConfigSchema as unknown as v.ObjectSchema<v.ObjectEntries, undefined>);
  for (const key of Object.keys(input)) if (!known.includes(key)) unknown.push(key);
  for (const nested of ['auth', 'tls', 'verify', 'incident'] as const) {
    const value = input[nested];
    const schema = (ConfigSchema.entries[nested] as unknown as { wrapped: v.ObjectSchema<v.ObjectEntries, undefined> })
      .wrapped;
    if (isPlain(value))
      for (const key of Object.keys(value)) if (!objectKeys(schema).includes(key)) unknown.push(`${nested}.${key}`);
  }
  return unknown;
}

export function validateConfig(input: unknown): { config?: FileConfig; problems: ConfigProblem[]; unknown: string[] } {
  const unknown = unknownKeys(input);
  const result = v.safeParse(ConfigSchema, input);
  if (result.success) return { config: result.output, problems: [], unknown };
  return {
    unknown,
    problems: result.issues.map((issue) => {
      const key = v.getDotPath(issue) ?? '(top level)';
      const expected = issue.message.replace(/^Invalid type: Expected (.*) but received .*$/, 'expected $1');
      const message = SECRET_KEY.test(key)
        ? expected.replace(/ but received .*$/, '')
        : `${expected}, not ${issue.received}`;
      return { key, message };
    }),
  };
}
