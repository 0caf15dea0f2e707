/** Handlers for requests about names and attributes (no open handle involved). */
import {
  Opcode,
  RENAME_EXCHANGE,
  RENAME_NOREPLACE,
  S_IFIFO,
  S_IFMT,
  S_IFREG,
  SetattrValid,
  NAME_MAX_BYTES,
  RELAY_NODE_ATTR,
} from "./fuse-constants.js";
import { Errno, VfsError, toErrno } from "./errors.js";
import {
  attrOut,
  entryOut,
  negativeEntryOut,
  relayMessage,
  statfsOut,
  type CacheTimeouts,
} from "./fuse-reply.js";
import type { FuseInHeader } from "./fuse-framer.js";
import type { BodyReader } from "./fuse-reader.js";
import type { OpHandler, OpsContext } from "./ops-context.js";
import type { RenameMode, VfsOwner, VfsSetattr, VfsStat } from "./provider.js";
import { statSignature } from "./stat-signature.js";
import { childPath } from "./names.js";

function owner(header: FuseInHeader): VfsOwner {
  return { uid: header.uid, gid: header.gid };
}

/** Stats the new name and hands the kernel a counted reference to it. */
export async function replyEntry(ctx: OpsContext, parent: bigint, name: string): Promise<Buffer> {
  const path = ctx.inodes.childPath(parent, name);
  const timeouts = ctx.timeouts(path);
  const stat = await ctx.provider.stat(path);
  const fileId = stat.type === "dir" ? undefined : stat.fileId;
  const nodeid = ctx.inodes.remember(parent, name, fileId);
  ctx.inodes.told(nodeid, statSignature(stat));
  return entryOut(nodeid, stat, timeouts);
}

const lookup: OpHandler = async (ctx, header, body) => {
  const name = body.name();
  const timeouts = ctx.timeouts(ctx.inodes.childPath(header.nodeid, name));
  try {
    return await replyEntry(ctx, header.nodeid, name);
  } catch (err) {
    if (toErrno(err) === Errno.ENOENT && timeouts.entryMs > 0) return negativeEntryOut(timeouts);
    throw err;
  }
};

const getattr: OpHandler = async (ctx, header, body) => {
  const flags = body.u32();
  body.skip(4);
  const fh = body.u64();
  const timeouts = nodeTimeouts(ctx, header.nodeid);
  // The kernel passes the handle for fstat; an unlinked open file has no path left.
  if ((flags & 1) !== 0) {
    const open = ctx.handles.file(fh);
    return attrReply(ctx, header.nodeid, await open.file.stat(), timeouts);
  }
  const open = ctx.handles.fileOf(header.nodeid);
  // fstat(2) comes without a handle; once the name is gone only an open handle can answer.
  if (open !== undefined && !ctx.inodes.linked(header.nodeid)) {
    return attrReply(ctx, header.nodeid, await open.file.stat(), timeouts);
  }
  const stat = await ctx.provider.stat(ctx.inodes.path(header.nodeid));
  return attrReply(ctx, header.nodeid, stat, timeouts);
};

/** The attribute reply, remembered as what the guest now knows of the node. */
function attrReply(
  ctx: OpsContext,
  nodeid: bigint,
  stat: VfsStat,
  timeouts: CacheTimeouts,
): Buffer {
  ctx.inodes.told(nodeid, statSignature(stat));
  return attrOut(nodeid, stat, timeouts);
}

/**
 * WL_RELAY_NODE_ATTR (docs/PROTOCOL.md): a directory's attributes right after a guest request
 * changed its entries, written to the relay before that request's reply. The guest kernel
 * drops the directory's attributes on such a change and the next path walk through it asks
 * again (default_permissions); the relay answers that GETATTR from this, within the same
 * validity a GETATTR reply would give, unless something about the directory came in between.
 * A failed stat pushes nothing (the relay then asks the host as before).
 */
export async function pushDirAttr(ctx: OpsContext, nodeid: bigint): Promise<void> {
  // Off where the relay answers nothing itself (file hooks: each stat must reach them).
  if (!ctx.relay.enabled) return;
  try {
    const timeouts = nodeTimeouts(ctx, nodeid);
    const attr = attrReply(ctx, nodeid, await ctx.provider.stat(ctx.inodes.path(nodeid)), timeouts);
    const id = Buffer.alloc(8);
    id.writeBigUInt64LE(nodeid, 0);
    ctx.pushes.push(relayMessage(RELAY_NODE_ATTR, Buffer.concat([id, attr])));
  } catch {
    // nothing pushed
  }
}

/** The node's timeouts by its current path; an unlinked node (no path) gets the default. */
function nodeTimeouts(ctx: OpsContext, nodeid: bigint): CacheTimeouts {
  return ctx.timeouts(ctx.inodes.linked(nodeid) ? ctx.inodes.path(nodeid) : "");
}

function nsToMs(seconds: bigint, ns: number): number {
  return Number(seconds) * 1000 + ns / 1e6;
}

const setattr: OpHandler = async (ctx, header, body) => {
  const valid = body.u32();
  body.skip(4);
  const fh = body.u64();
  const sizeBytes = body.u64Number();
  body.skip(8); // lock_owner
  const atime = body.u64();
  const mtime = body.u64();
  body.skip(8); // ctime: not settable
  const atimeNs = body.u32();
  const mtimeNs = body.u32();
  body.skip(4);
  const mode = body.u32();
  body.skip(4);
  const uid = body.u32();
  const gid = body.u32();
  const now = Date.now();
  const attrs: VfsSetattr = {
    ...((valid & SetattrValid.MODE) !== 0 ? { mode: mode & 0o7777 } : {}),
    ...((valid & SetattrValid.UID) !== 0 ? { uid } : {}),
    ...((valid & SetattrValid.GID) !== 0 ? { gid } : {}),
    ...((valid & SetattrValid.SIZE) !== 0 ? { sizeBytes } : {}),
    ...((valid & SetattrValid.ATIME_NOW) !== 0
      ? { atimeMs: now }
      : (valid & SetattrValid.ATIME) !== 0
        ? { atimeMs: nsToMs(atime, atimeNs) }
        : {}),
    ...((valid & SetattrValid.MTIME_NOW) !== 0
      ? { mtimeMs: now }
      : (valid & SetattrValid.MTIME) !== 0
        ? { mtimeMs: nsToMs(mtime, mtimeNs) }
        : {}),
  };
  const onlySize = Object.keys(attrs).length === 1 && attrs.sizeBytes !== undefined;
  const timeouts = nodeTimeouts(ctx, header.nodeid);
  const kill = killsPrivileges(valid);
  if ((valid & SetattrValid.FH) !== 0 && onlySize) {
    // ftruncate on an open (possibly unlinked) file goes through its handle.
    const open = ctx.handles.file(fh);
    await open.file.truncate(sizeBytes);
    const stat = await open.file.stat();
    const linked = ctx.inodes.linked(header.nodeid);
    const killed = linked ? await killSetId(ctx, ctx.inodes.path(header.nodeid), stat) : stat;
    return attrReply(ctx, header.nodeid, killed, timeouts);
  }
  const path = ctx.inodes.path(header.nodeid);
  const stat = await ctx.provider.setattr(path, attrs);
  return attrReply(ctx, header.nodeid, kill ? await killSetId(ctx, path, stat) : stat, timeouts);
};

const SETID_KILL_VALID = SetattrValid.UID | SetattrValid.GID | SetattrValid.SIZE;
const NOT_ATTRIBUTES = SetattrValid.FH | SetattrValid.LOCKOWNER;

/**
 * With FUSE_HANDLE_KILLPRIV (negotiated in INIT) the kernel no longer clears set-id bits
 * itself, and no longer fetches the attributes first to do so (one GETATTR per chown, i.e. per
 * file of an untar): the server does it on chown and truncate, and on the SETATTR without any
 * attribute that a write by an unprivileged process to a set-id file sends.
 */
function killsPrivileges(valid: number): boolean {
  return (valid & SETID_KILL_VALID) !== 0 || (valid & ~NOT_ATTRIBUTES) === 0;
}

/** Clears S_ISUID, and S_ISGID with group execute (as the kernel's fuse_setattr would). */
async function killSetId(ctx: OpsContext, path: string, stat: VfsStat): Promise<VfsStat> {
  if (stat.type !== "file") return stat;
  let mode = stat.mode & ~S_ISUID;
  if ((stat.mode & (S_ISGID | S_IXGRP)) === (S_ISGID | S_IXGRP)) mode &= ~S_ISGID;
  return mode === stat.mode ? stat : ctx.provider.setattr(path, { mode });
}

const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_IXGRP = 0o010;

const readlink: OpHandler = async (ctx, header) =>
  Buffer.from(await ctx.provider.readlink(ctx.inodes.path(header.nodeid)));

const symlink: OpHandler = async (ctx, header, body) => {
  const name = body.name();
  const target = body.linkTarget();
  await ctx.provider.symlink(target, ctx.inodes.childPath(header.nodeid, name), owner(header));
  ctx.relay.added(ctx, header.nodeid, name);
  const entry = await replyEntry(ctx, header.nodeid, name);
  await pushDirAttr(ctx, header.nodeid);
  return entry;
};

const mknod: OpHandler = async (ctx, header, body) => {
  const mode = body.u32();
  body.skip(12); // rdev, umask, padding: the kernel already applied the umask
  const name = body.name();
  const kind = mode & S_IFMT;
  // Device nodes would be a way to reach host devices through a host directory; never.
  if (kind !== S_IFREG && kind !== S_IFIFO) throw new VfsError(Errno.EPERM);
  const path = ctx.inodes.childPath(header.nodeid, name);
  await ctx.provider.mknod(path, kind === S_IFREG ? "file" : "fifo", mode & 0o7777, owner(header));
  ctx.relay.added(ctx, header.nodeid, name);
  const entry = await replyEntry(ctx, header.nodeid, name);
  await pushDirAttr(ctx, header.nodeid);
  return entry;
};

const mkdir: OpHandler = async (ctx, header, body) => {
  const mode = body.u32();
  body.skip(4);
  const name = body.name();
  const path = ctx.inodes.childPath(header.nodeid, name);
  // Asked before the mkdir, like any timeout (OpsContext.timeouts): for the empty listing.
  const inside = ctx.timeouts(childPath(path, "x"));
  await ctx.provider.mkdir(path, mode & 0o7777, owner(header));
  const entry = await replyEntry(ctx, header.nodeid, name);
  ctx.relay.madeDir(ctx, header.nodeid, name, entry.readBigUInt64LE(0), inside);
  await pushDirAttr(ctx, header.nodeid);
  return entry;
};

const unlink: OpHandler = async (ctx, header, body) => {
  const name = body.name();
  const path = ctx.inodes.childPath(header.nodeid, name);
  await ctx.provider.unlink(path);
  ctx.relay.removed(ctx, header.nodeid, name, ctx.inodes.find(path).node);
  ctx.inodes.detach(header.nodeid, name);
  await pushDirAttr(ctx, header.nodeid);
  return Buffer.alloc(0);
};

const rmdir: OpHandler = async (ctx, header, body) => {
  const name = body.name();
  const path = ctx.inodes.childPath(header.nodeid, name);
  await ctx.provider.rmdir(path);
  ctx.relay.removedDir(ctx, header.nodeid, name, ctx.inodes.find(path).node);
  ctx.inodes.detach(header.nodeid, name);
  await pushDirAttr(ctx, header.nodeid);
  return Buffer.alloc(0);
};

async function renameCommon(
  ctx: OpsContext,
  header: FuseInHeader,
  newParent: bigint,
  flags: number,
  body: BodyReader,
): Promise<Buffer> {
  const fromName = body.name();
  const toName = body.name();
  if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) !== 0) throw new VfsError(Errno.EINVAL);
  if (flags === (RENAME_NOREPLACE | RENAME_EXCHANGE)) throw new VfsError(Errno.EINVAL);
  const mode: RenameMode =
    flags === RENAME_EXCHANGE ? "exchange" : flags === RENAME_NOREPLACE ? "noreplace" : "replace";
  const from = ctx.inodes.childPath(header.nodeid, fromName);
  const to = ctx.inodes.childPath(newParent, toName);
  // Moving a directory into itself would detach a subtree from the root of the table.
  if (to.startsWith(`${from}/`)) throw new VfsError(Errno.EINVAL);
  await ctx.provider.rename(from, to, mode);
  // Both names now lead to other nodes (or none): listed again without entries.
  const fromNode = ctx.inodes.find(from).node;
  const toNode = ctx.inodes.find(to).node;
  if (mode === "exchange") ctx.relay.added(ctx, header.nodeid, fromName, toNode);
  else ctx.relay.removed(ctx, header.nodeid, fromName, fromNode);
  ctx.relay.added(ctx, newParent, toName, toNode);
  if (mode === "exchange") ctx.inodes.exchange(header.nodeid, fromName, newParent, toName);
  else ctx.inodes.move(header.nodeid, fromName, newParent, toName);
  await pushDirAttr(ctx, header.nodeid);
  if (newParent !== header.nodeid) await pushDirAttr(ctx, newParent);
  return Buffer.alloc(0);
}

const rename: OpHandler = async (ctx, header, body) =>
  renameCommon(ctx, header, body.u64(), 0, body);

const rename2: OpHandler = async (ctx, header, body) => {
  const newParent = body.u64();
  const flags = body.u32();
  body.skip(4);
  return renameCommon(ctx, header, newParent, flags, body);
};

const link: OpHandler = async (ctx, header, body) => {
  const oldNode = body.u64();
  const name = body.name();
  await ctx.provider.link(ctx.inodes.path(oldNode), ctx.inodes.childPath(header.nodeid, name));
  ctx.relay.added(ctx, header.nodeid, name, oldNode);
  const entry = await replyEntry(ctx, header.nodeid, name);
  await pushDirAttr(ctx, header.nodeid);
  return entry;
};

const statfs: OpHandler = async (ctx, header) =>
  statfsOut(await ctx.provider.statfs(ctx.inodes.path(header.nodeid)), NAME_MAX_BYTES);

/** Permission checks are the guest kernel's (default_permissions); existence is ours. */
const access: OpHandler = async (ctx, header) => {
  await ctx.provider.stat(ctx.inodes.path(header.nodeid));
  return Buffer.alloc(0);
};

const forget: OpHandler = async (ctx, header, body) => {
  ctx.inodes.forget(header.nodeid, body.u64());
  return undefined;
};

/** At most this many entries per BATCH_FORGET, whatever count the request claims. */
const MAX_BATCH_FORGET = 1 << 16;

const batchForget: OpHandler = async (ctx, _header, body) => {
  const count = Math.min(body.u32(), MAX_BATCH_FORGET);
  body.skip(4);
  for (let i = 0; i < count; i++) {
    const nodeid = body.u64();
    ctx.inodes.forget(nodeid, body.u64());
  }
  return undefined;
};

export const nodeOps: ReadonlyMap<number, OpHandler> = new Map<number, OpHandler>([
  [Opcode.LOOKUP, lookup],
  [Opcode.GETATTR, getattr],
  [Opcode.SETATTR, setattr],
  [Opcode.READLINK, readlink],
  [Opcode.SYMLINK, symlink],
  [Opcode.MKNOD, mknod],
  [Opcode.MKDIR, mkdir],
  [Opcode.UNLINK, unlink],
  [Opcode.RMDIR, rmdir],
  [Opcode.RENAME, rename],
  [Opcode.RENAME2, rename2],
  [Opcode.LINK, link],
  [Opcode.STATFS, statfs],
  [Opcode.ACCESS, access],
  [Opcode.FORGET, forget],
  [Opcode.BATCH_FORGET, batchForget],
]);
