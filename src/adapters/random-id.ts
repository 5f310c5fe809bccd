import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** Random bytes kept from one read of the kernel's generator, handed out 16 at a time. */
let pool: Buffer | undefined;
let used = 0;

function randomBytes16(): Buffer {
  if (!pool || used + 16 > pool.length) {
    pool = undefined;
    const fresh = Buffer.alloc(256);
    const fd = openSync('/dev/urandom', 'r');
    try {
      // A file put in its place (a bad chroot) would give every process the same ids.
      if (!fstatSync(fd).isCharacterDevice()) throw new Error('/dev/urandom is not a device');
      for (let filled = 0; filled < fresh.length; ) {
        const read = readSync(fd, fresh, filled, fresh.length - filled, null);
        if (read <= 0) throw new Error('/dev/urandom ended'); // not the kernel's generator (a bad chroot): node:crypto instead
        filled += read;
      }
    } finally {
      closeSync(fd);
    }
    pool = fresh;
    used = 0;
  }
  used += 16;
  return pool.subarray(used - 16, used);
}

/**
 * A random (version 4) UUID for a record. From /dev/urandom where there is one: node:crypto's
 * randomUUID would load the crypto module, a few milliseconds of every command; elsewhere
 * (Windows) from node:crypto.
 */
export function newRecordId(): string {
  let bytes: Buffer;
  try {
    bytes = Buffer.from(randomBytes16());
  } catch {
    return process.getBuiltinModule('node:crypto').randomUUID();
  }
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
