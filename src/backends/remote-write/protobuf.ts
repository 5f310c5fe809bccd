/**
 * The three messages of Prometheus remote-write 1.0, encoded by hand (prompb/types.proto,
 * prompb/remote.proto): a general protobuf library would cost start-up time for four fields.
 *
 *   WriteRequest { repeated TimeSeries timeseries = 1; }
 *   TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
 *   Label        { string name = 1; string value = 2; }
 *   Sample       { double value = 1; int64 timestamp = 2; }
 *
 * Fields at their default value (empty string, 0) are left out, as proto3 encoders do.
 */

export interface Label {
  name: string;
  value: string;
}

interface Sample {
  value: number;
  /** Milliseconds since the epoch. */
  timestampMs: number;
}

export interface TimeSeries {
  labels: Label[];
  samples: Sample[];
}

const LENGTH_DELIMITED = 2;
const VARINT = 0;
const FIXED64 = 1;

class Writer {
  private readonly chunks: Uint8Array[] = [];
  length = 0;

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  varint(value: bigint): void {
    let rest = BigInt.asUintN(64, value);
    const bytes: number[] = [];
    do {
      let byte = Number(rest & 0x7fn);
      rest >>= 7n;
      if (rest !== 0n) byte |= 0x80;
      bytes.push(byte);
    } while (rest !== 0n);
    this.push(Uint8Array.from(bytes));
  }

  tag(field: number, wireType: number): void {
    this.varint(BigInt((field << 3) | wireType));
  }

  bytes(field: number, bytes: Uint8Array): void {
    this.tag(field, LENGTH_DELIMITED);
    this.varint(BigInt(bytes.length));
    this.push(bytes);
  }

  string(field: number, value: string): void {
    if (value !== '') this.bytes(field, Buffer.from(value, 'utf8'));
  }

  double(field: number, value: number): void {
    if (value === 0 && !Object.is(value, -0)) return;
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setFloat64(0, value, true);
    this.tag(field, FIXED64);
    this.push(bytes);
  }

  int64(field: number, value: number): void {
    if (value === 0) return;
    this.tag(field, VARINT);
    this.varint(BigInt(value));
  }

  message(field: number, write: (writer: Writer) => void): void {
    const inner = new Writer();
    write(inner);
    this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }
}

/** A WriteRequest, as bytes, before compression. */
export function encodeWriteRequest(series: readonly TimeSeries[]): Uint8Array {
  const writer = new Writer();
  for (const one of series) {
    writer.message(1, (ts) => {
      for (const label of one.labels) {
        ts.message(1, (l) => {
          l.string(1, label.name);
          l.string(2, label.value);
        });
      }
      for (const sample of one.samples) {
        if (!Number.isSafeInteger(sample.timestampMs))
          throw new RangeError(`sample timestamp ${sample.timestampMs} is not a whole number of milliseconds`);
        ts.message(2, (s) => {
          s.double(1, sample.value);
          s.int64(2, sample.timestampMs);
        });
      }
    });
  }
  return writer.finish();
}

/**
 * Labels as remote-write wants them: sorted by name (the spec says must), and without empty
 * values (Prometheus treats a label with an empty value as absent).
 */
export function sortedLabels(labels: Record<string, string>): Label[] {
  return Object.entries(labels)
    .filter(([, value]) => value !== '')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => ({ name, value }));
}

/** Samples as text, one per line, for --dry-run and --verbose. */
export function describeSamples(samples: readonly TimeSeries[]): string {
  return samples
    .flatMap((s) => {
      const name = s.labels.find((l) => l.name === '__name__')?.value ?? '';
      const labels = s.labels
        .filter((l) => l.name !== '__name__')
        .map((l) => `${l.name}=${JSON.stringify(l.value)}`)
        .join(', ');
      return s.samples.map((sample) => `${name}{${labels}} ${sample.value} ${sample.timestampMs}`);
    })
    .join('\n');
}
