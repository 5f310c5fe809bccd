declare module 'snappyjs' {
  /** Snappy block format (not the framing format), as remote-write wants it. */
  export function compress<T extends Uint8Array | ArrayBuffer | Buffer>(input: T): T;
  export function uncompress<T extends Uint8Array | ArrayBuffer | Buffer>(input: T, maxLength?: number): T;
}
