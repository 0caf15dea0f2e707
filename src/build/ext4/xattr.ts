/**
 * ext4 extended attribute entries (in-inode area and attribute blocks), with the name-index
 * prefixes expanded, and POSIX ACLs converted from ext4's compact disk form to the form the
 * VFS (and tar's SCHILY.xattr records) use.
 */
export interface Xattr {
  name: string;
  value: Buffer;
}

const PREFIX: Record<number, string> = {
  1: "user.",
  2: "system.posix_acl_access",
  3: "system.posix_acl_default",
  4: "trusted.",
  6: "security.",
  7: "system.",
  8: "system.richacl",
};

/**
 * Entries start at `first` in `area`; value offsets count from `valueBase` (the area start for
 * in-inode attributes, the block start for attribute blocks: both are `area` offset 0 here,
 * because in-inode areas are passed starting at their first entry).
 */
export function parseXattrs(area: Buffer, first: number, fail: (why: string) => never): Xattr[] {
  const out: Xattr[] = [];
  let off = first;
  while (off + 16 <= area.length) {
    const nameLen = area[off]!;
    const index = area[off + 1]!;
    const valueOffs = area.readUInt16LE(off + 2);
    if (nameLen === 0 && index === 0 && valueOffs === 0 && area.readUInt32LE(off + 4) === 0) break;
    const valueInum = area.readUInt32LE(off + 4);
    const valueSize = area.readUInt32LE(off + 8);
    if (off + 16 + nameLen > area.length) fail("malformed extended attribute entry");
    const suffix = area.subarray(off + 16, off + 16 + nameLen).toString("latin1");
    const prefix = PREFIX[index];
    if (prefix === undefined) fail(`extended attribute with unknown name index ${index}`);
    if (valueInum !== 0) fail("extended attribute values in separate inodes are not supported");
    if (valueOffs + valueSize > area.length) fail("extended attribute value out of bounds");
    const name = prefix + suffix;
    let value: Buffer = Buffer.from(area.subarray(valueOffs, valueOffs + valueSize));
    if (index === 2 || index === 3) value = aclToVfs(value, fail);
    out.push({ name, value });
    off += (16 + nameLen + 3) & ~3;
  }
  return out;
}

const ACL_USER = 0x02;
const ACL_GROUP = 0x08;

/** ext4's ACL (version 1, short entries for the *_OBJ/MASK/OTHER tags) to the VFS's version 2. */
function aclToVfs(disk: Buffer, fail: (why: string) => never): Buffer {
  if (disk.length < 4 || disk.readUInt32LE(0) !== 1) fail("malformed POSIX ACL");
  const entries: Buffer[] = [];
  let off = 4;
  while (off < disk.length) {
    if (off + 4 > disk.length) fail("malformed POSIX ACL");
    const tag = disk.readUInt16LE(off);
    const perm = disk.readUInt16LE(off + 2);
    const long = tag === ACL_USER || tag === ACL_GROUP;
    if (long && off + 8 > disk.length) fail("malformed POSIX ACL");
    const id = long ? disk.readUInt32LE(off + 4) : 0xffffffff;
    const e = Buffer.alloc(8);
    e.writeUInt16LE(tag, 0);
    e.writeUInt16LE(perm, 2);
    e.writeUInt32LE(id, 4);
    entries.push(e);
    off += long ? 8 : 4;
  }
  const header = Buffer.alloc(4);
  header.writeUInt32LE(2, 0);
  return Buffer.concat([header, ...entries]);
}
