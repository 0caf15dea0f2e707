/** Handlers for open handles: files (open/create/read/write/...) and directories. */
import { MAX_WRITE_BYTES, Opcode, RELAY_SYNC_WRITES } from "./fuse-constants.js";
import { Errno, VfsError } from "./errors.js";
import { dirent, openOut, relayMessage, writeOut } from "./fuse-reply.js";
import type { OpHandler, OpsContext } from "./ops-context.js";
import { pushDirAttr, replyEntry } from "./ops-node.js";
import type { VfsDirEntry, VfsHandle, VfsOpenFlags } from "./provider.js";

const O_ACCMODE = 3;
const O_WRONLY = 1;
const O_RDWR = 2;
const O_TRUNC = 0o1000;
const O_APPEND = 0o2000;

export function decodeOpenFlags(flags: number): VfsOpenFlags {
  const access = flags & O_ACCMODE;
  if (access === O_ACCMODE) throw new VfsError(Errno.EINVAL);
  return {
    read: access !== O_WRONLY,
    write: access === O_WRONLY || access === O_RDWR,
    append: (flags & O_APPEND) !== 0,
    truncate: (flags & O_TRUNC) !== 0,
  };
}

/** Tells the guest's relay to write nothing of this file behind (RELAY_SYNC_WRITES). */
function pushSyncWrites(ctx: OpsContext, nodeid: bigint, file: VfsHandle): void {
  if (file.spaceLimited !== true) return;
  const body = Buffer.alloc(8);
  body.writeBigUInt64LE(nodeid, 0);
  ctx.pushes.push(relayMessage(RELAY_SYNC_WRITES, body));
}

const open: OpHandler = async (ctx, header, body) => {
  const flags = decodeOpenFlags(body.u32());
  const file = await ctx.provider.open(ctx.inodes.path(header.nodeid), flags);
  if (flags.write) pushSyncWrites(ctx, header.nodeid, file);
  try {
    return openOut(ctx.handles.add({ kind: "file", nodeid: header.nodeid, file }), 0);
  } catch (err) {
    await file.close().catch(() => undefined);
    throw err;
  }
};

const create: OpHandler = async (ctx, header, body) => {
  const flags = decodeOpenFlags(body.u32());
  const mode = body.u32();
  body.skip(8); // umask (already applied by the kernel), open_flags
  const name = body.name();
  const path = ctx.inodes.childPath(header.nodeid, name);
  const file = await ctx.provider.create(path, mode & 0o7777, flags, {
    uid: header.uid,
    gid: header.gid,
  });
  ctx.relay.added(ctx, header.nodeid, name);
  try {
    const entry = await replyEntry(ctx, header.nodeid, name);
    const nodeid = entry.readBigUInt64LE(0);
    await pushDirAttr(ctx, header.nodeid);
    if (flags.write) pushSyncWrites(ctx, nodeid, file);
    return Buffer.concat([entry, openOut(ctx.handles.add({ kind: "file", nodeid, file }), 0)]);
  } catch (err) {
    await file.close().catch(() => undefined);
    throw err;
  }
};

const read: OpHandler = async (ctx, _header, body) => {
  const fh = body.u64();
  const offset = body.u64Number();
  const size = body.u32();
  // The kernel never asks for more than max_write-sized pages; a bigger ask is an attack on host memory.
  if (size > MAX_WRITE_BYTES) throw new VfsError(Errno.EINVAL);
  const data = await ctx.handles.file(fh).file.read(offset, size);
  return data.length > size ? data.subarray(0, size) : data;
};

const write: OpHandler = async (ctx, _header, body) => {
  const fh = body.u64();
  const offset = body.u64Number();
  const size = body.u32();
  body.skip(4 + 8 + 4 + 4); // write_flags, lock_owner, flags, padding
  const data = body.rest();
  if (size > MAX_WRITE_BYTES || data.length !== size) throw new VfsError(Errno.EINVAL);
  const written = await ctx.handles.file(fh).file.write(offset, data);
  return writeOut(written);
};

const release: OpHandler = async (ctx, _header, body) => {
  const handle = ctx.handles.take(body.u64());
  if (handle?.kind === "file") await handle.file.close();
  return Buffer.alloc(0);
};

/**
 * close(2). Every WRITE already reached the host file by the time this runs (the server runs
 * it after all earlier write-behind requests), so there is nothing to flush here; the guest's
 * relay answers FLUSH itself unless write-behind requests of the file are still on their way,
 * and then turns this reply into their first error (guest/fuse_wb.c). Not ENOSYS: the kernel
 * would stop sending FLUSH for the mount, and write-behind errors would have no close to show at.
 */
const flush: OpHandler = async () => Buffer.alloc(0);

const fsync: OpHandler = async (ctx, _header, body) => {
  await ctx.handles.file(body.u64()).file.sync();
  return Buffer.alloc(0);
};

const opendir: OpHandler = async (ctx, header) => {
  const path = ctx.inodes.path(header.nodeid);
  // A snapshot per open: offsets stay meaningful while the directory changes underneath.
  const listed = await ctx.provider.readdir(path);
  const entries: VfsDirEntry[] = [
    { name: ".", type: "dir" },
    { name: "..", type: "dir" },
    ...listed,
  ];
  const fh = ctx.handles.add({ kind: "dir", nodeid: header.nodeid, entries });
  return openOut(fh, ctx.listings.opened(header.nodeid, fh, entries));
};

const readdir: OpHandler = async (ctx, _header, body) => {
  const fh = body.u64();
  const dir = ctx.handles.dir(fh);
  ctx.listings.read(fh);
  const offset = body.u64Number();
  const size = Math.min(body.u32(), MAX_WRITE_BYTES);
  const parts: Buffer[] = [];
  let used = 0;
  for (let index = offset; index < dir.entries.length; index++) {
    const entry = dir.entries[index]!;
    // d_ino 0 makes some libcs skip the entry; the real inode comes from LOOKUP anyway.
    const buf = dirent(BigInt(index + 2), index + 1, entry.name, entry.type, size - used);
    if (buf === undefined) break;
    parts.push(buf);
    used += buf.length;
  }
  return Buffer.concat(parts);
};

const releasedir: OpHandler = async (ctx, _header, body) => {
  const fh = body.u64();
  ctx.handles.take(fh);
  ctx.listings.released(fh);
  return Buffer.alloc(0);
};

const fsyncdir: OpHandler = async () => Buffer.alloc(0);

export const fileOps: ReadonlyMap<number, OpHandler> = new Map<number, OpHandler>([
  [Opcode.OPEN, open],
  [Opcode.CREATE, create],
  [Opcode.READ, read],
  [Opcode.WRITE, write],
  [Opcode.RELEASE, release],
  [Opcode.FLUSH, flush],
  [Opcode.FSYNC, fsync],
  [Opcode.OPENDIR, opendir],
  [Opcode.READDIR, readdir],
  [Opcode.RELEASEDIR, releasedir],
  [Opcode.FSYNCDIR, fsyncdir],
]);
