/**
 * A writer for the "newc" cpio format (the one the Linux kernel unpacks as an initramfs).
 * Each entry: a 110-byte ASCII header of hex fields, the NUL-terminated name padded to 4 bytes,
 * then the data padded to 4 bytes; a "TRAILER!!!" entry ends the archive.
 */

export type CpioEntry =
  | { type: "dir"; name: string; mode: number }
  | { type: "file"; name: string; mode: number; data: Uint8Array }
  | { type: "chardev"; name: string; mode: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;

/** Builds the archive. Names are relative ("init", "dev/console"); parents must come first. */
export function buildCpio(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  const push = (b: Buffer): void => {
    parts.push(b);
    offset += b.length;
  };
  const pad = (): void => {
    const rem = offset % 4;
    if (rem) push(Buffer.alloc(4 - rem));
  };
  let ino = 1;
  const write = (
    name: string,
    mode: number,
    data: Uint8Array,
    rdev: [number, number] = [0, 0],
  ): void => {
    if (name.startsWith("/") || name.includes("\0") || name.length === 0)
      throw new Error(`bad cpio entry name: ${JSON.stringify(name)}`);
    const nameBytes = Buffer.from(`${name}\0`, "utf8");
    const fields = [
      ino++,
      mode,
      0, // uid
      0, // gid
      (mode & S_IFDIR) === S_IFDIR ? 2 : 1, // nlink
      0, // mtime: fixed, so equal inputs give byte-identical archives
      data.length,
      0, // devmajor
      0, // devminor
      rdev[0],
      rdev[1],
      nameBytes.length,
      0, // check
    ];
    push(Buffer.from(`070701${fields.map(hex8).join("")}`, "ascii"));
    push(nameBytes);
    pad();
    if (data.length > 0) {
      push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      pad();
    }
  };
  for (const e of entries) {
    if (e.type === "dir") write(e.name, S_IFDIR | (e.mode & 0o7777), new Uint8Array());
    else if (e.type === "file") write(e.name, S_IFREG | (e.mode & 0o7777), e.data);
    else write(e.name, S_IFCHR | (e.mode & 0o7777), new Uint8Array(), [e.major, e.minor]);
  }
  // The trailer has ino 0 like GNU cpio writes it.
  ino = 0;
  write("TRAILER!!!", 0, new Uint8Array());
  return Buffer.concat(parts, offset);
}

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff)
    throw new Error(`cpio field out of range: ${n}`);
  return n.toString(16).padStart(8, "0");
}
