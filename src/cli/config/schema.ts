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
      attributionWindow: v.optional(nonEmpty),
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

export interface UnknownKey {
  /** Its dot path, such as `auth.usrname`. */
  key: string;
  /** The known key at the same level it is closest to, when it is close enough to be a typo. */
  suggestion?: string;
}

type AnySchema = { type: string; entries?: Record<string, AnySchema>; wrapped?: AnySchema };

/** The object schema under optional/nullable wrappers, if it is one (records take any key). */
function objectEntries(schema: AnySchema | undefined): Record<string, AnySchema> | undefined {
  let inner = schema;
  while (inner?.wrapped) inner = inner.wrapped;
  return inner?.type === 'object' ? inner.entries : undefined;
}

const isPlain = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The keys of the input that the schema does not know, as dot paths, each with the key it may be a typo of. */
function unknownKeys(input: unknown, entries: Record<string, AnySchema>, prefix = ''): UnknownKey[] {
  if (!isPlain(input)) return [];
  const unknown: UnknownKey[] = [];
  for (const [key, value] of Object.entries(input)) {
    const schema = entries[key];
    if (!schema) {
      const suggestion = closestKey(key, Object.keys(entries));
      unknown.push({ key: `${prefix}${key}`, ...(suggestion && { suggestion: `${prefix}${suggestion}` }) });
      continue;
    }
    const nested = objectEntries(schema);
    if (nested) unknown.push(...unknownKeys(value, nested, `${prefix}${key}.`));
  }
  return unknown;
}

/** Lower case, without `_` and `-`: `remote_write` and `RemoteWrite` are both `remotewrite`. */
const normalized = (key: string) => key.toLowerCase().replace(/[-_]/g, '');

/** Edits (insert, delete, replace, swap two neighbours) that turn a into b. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  return d[a.length]![b.length]!;
}

/** The known key closest to an unknown one, if within a third of its length (at least 1 edit). */
function closestKey(key: string, known: string[]): string | undefined {
  let best: { key: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(normalized(key), normalized(candidate));
    if (!best || distance < best.distance) best = { key: candidate, distance };
  }
  return best && best.distance <= Math.max(1, Math.floor(key.length / 3)) ? best.key : undefined;
}

export function validateConfig(input: unknown): {
  config?: FileConfig;
  problems: ConfigProblem[];
  unknown: UnknownKey[];
} {
  const unknown = unknownKeys(input, (ConfigSchema as unknown as AnySchema).entries ?? {});
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
