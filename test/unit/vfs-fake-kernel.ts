/**
 * Plays the guest kernel against a FuseServer: builds raw FUSE requests byte by byte and
 * decodes the replies, so tests exercise the wire format, not just the provider calls.
 */
import { Opcode, SetattrValid } from "../../src/vfs/fuse-constants.js";
import { encodeRequest, decodeInHeader, type FuseServer } from "../../src/vfs/index.js";

export interface Reply {
  readonly error: number;
  readonly payload: Buffer;
}

export interface Attr {
  readonly ino: bigint;
  readonly size: number;
  readonly mode: number;
  readonly nlink: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeSec: number;
}

export class FuseErrno extends Error {
  constructor(readonly errno: number) {
    super(`errno ${errno}`);
  }
}

export function cstr(s: string): Buffer {
  return Buffer.concat([Buffer.from(s), Buffer.from([0])]);
}

function u32s(...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeUInt32LE(v >>> 0, i * 4));
  return b;
}

function u64(value: bigint | number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(value));
  return b;
}

export function decodeAttr(buf: Buffer, at: number): Attr {
  return {
    ino: buf.readBigUInt64LE(at),
    size: Number(buf.readBigUInt64LE(at + 8)),
    mtimeSec: Number(buf.readBigUInt64LE(at + 32)),
    mode: buf.readUInt32LE(at + 60),
    nlink: buf.readUInt32LE(at + 64),
    uid: buf.readUInt32LE(at + 68),
    gid: buf.readUInt32LE(at + 72),
  };
}

export class FakeKernel {
  private unique = 1n;
  uid = 0;
  gid = 0;

  constructor(readonly server: FuseServer) {}

  /** Sends raw bytes as one request (for malformed-input tests). */
  async raw(bytes: Buffer): Promise<Reply | undefined> {
    const reply = await this.server.handle({
      header: decodeInHeader(bytes),
      body: bytes.subarray(40),
    });
    if (reply === undefined) return undefined;
    // What the server pushes to the guest's relay ahead of a reply (unique 0) never reaches
    // the kernel: the relay consumes it.
    let at = 0;
    while (reply.length - at >= 16 && reply.readBigUInt64LE(at + 8) === 0n) {
      const len = reply.readUInt32LE(at);
      if (len < 16 || at + len > reply.length) throw new Error("push length field is wrong");
      at += len;
    }
    if (at === reply.length) return undefined;
    const own = reply.subarray(at);
    const header = own.readInt32LE(4);
    if (own.readUInt32LE(0) !== own.length) throw new Error("reply length field is wrong");
    return { error: header, payload: own.subarray(16) };
  }

  request(opcode: number, nodeid: bigint, body: Buffer = Buffer.alloc(0)): Buffer {
    return encodeRequest(
      { opcode, unique: this.unique++, nodeid, uid: this.uid, gid: this.gid, pid: 1 },
      body,
    );
  }

  async call(opcode: number, nodeid: bigint, body?: Buffer): Promise<Buffer> {
    const reply = await this.raw(this.request(opcode, nodeid, body));
    if (reply === undefined) throw new Error("no reply");
    if (reply.error !== 0) throw new FuseErrno(-reply.error);
    return reply.payload;
  }

  async init(minor = 37, flags = 0xffffffff): Promise<Buffer> {
    return this.call(
      Opcode.INIT,
      0n,
      Buffer.concat([u32s(7, minor, 1 << 20, flags), Buffer.alloc(48)]),
    );
  }

  async lookup(parent: bigint, name: string): Promise<{ nodeid: bigint; attr: Attr }> {
    const p = await this.call(Opcode.LOOKUP, parent, cstr(name));
    // A cacheable negative entry (nodeid 0): the kernel turns it into ENOENT for the caller.
    if (p.readBigUInt64LE(0) === 0n) throw new FuseErrno(2);
    return { nodeid: p.readBigUInt64LE(0), attr: decodeAttr(p, 40) };
  }

  async getattr(nodeid: bigint, fh?: bigint): Promise<Attr> {
    const body = Buffer.concat([u32s(fh === undefined ? 0 : 1, 0), u64(fh ?? 0n)]);
    return decodeAttr(await this.call(Opcode.GETATTR, nodeid, body), 16);
  }

  async setattr(
    nodeid: bigint,
    attrs: {
      mode?: number;
      size?: number;
      uid?: number;
      atimeSec?: number;
      mtimeSec?: number;
      fh?: bigint;
    },
  ): Promise<Attr> {
    let valid = 0;
    if (attrs.mode !== undefined) valid |= SetattrValid.MODE;
    if (attrs.size !== undefined) valid |= SetattrValid.SIZE;
    if (attrs.uid !== undefined) valid |= SetattrValid.UID;
    if (attrs.atimeSec !== undefined) valid |= SetattrValid.ATIME;
    if (attrs.mtimeSec !== undefined) valid |= SetattrValid.MTIME;
    if (attrs.fh !== undefined) valid |= SetattrValid.FH;
    const body = Buffer.concat([
      u32s(valid, 0),
      u64(attrs.fh ?? 0n),
      u64(attrs.size ?? 0),
      u64(0), // lock_owner
      u64(attrs.atimeSec ?? 0),
      u64(attrs.mtimeSec ?? 0),
      u64(0),
      u32s(0, 0, 0, attrs.mode ?? 0, 0, attrs.uid ?? 0, 0, 0),
    ]);
    return decodeAttr(await this.call(Opcode.SETATTR, nodeid, body), 16);
  }

  async statfs(nodeid = 1n): Promise<{
    blocks: number;
    blocksFree: number;
    files: number;
    filesFree: number;
    blockBytes: number;
  }> {
    const p = await this.call(Opcode.STATFS, nodeid);
    return {
      blocks: Number(p.readBigUInt64LE(0)),
      blocksFree: Number(p.readBigUInt64LE(8)),
      files: Number(p.readBigUInt64LE(24)),
      filesFree: Number(p.readBigUInt64LE(32)),
      blockBytes: p.readUInt32LE(40),
    };
  }

  async mkdir(parent: bigint, name: string, mode = 0o755): Promise<bigint> {
    const p = await this.call(Opcode.MKDIR, parent, Buffer.concat([u32s(mode, 0), cstr(name)]));
    return p.readBigUInt64LE(0);
  }

  async mknod(parent: bigint, name: string, mode: number): Promise<bigint> {
    const body = Buffer.concat([u32s(mode, 0, 0, 0), cstr(name)]);
    return (await this.call(Opcode.MKNOD, parent, body)).readBigUInt64LE(0);
  }

  async create(
    parent: bigint,
    name: string,
    mode = 0o644,
    flags = 2,
  ): Promise<{ nodeid: bigint; fh: bigint }> {
    const p = await this.call(
      Opcode.CREATE,
      parent,
      Buffer.concat([u32s(flags, mode, 0, 0), cstr(name)]),
    );
    return { nodeid: p.readBigUInt64LE(0), fh: p.readBigUInt64LE(128) };
  }

  async open(nodeid: bigint, flags = 0): Promise<bigint> {
    return (await this.call(Opcode.OPEN, nodeid, u32s(flags, 0))).readBigUInt64LE(0);
  }

  async read(fh: bigint, offset: number, size: number): Promise<Buffer> {
    const body = Buffer.concat([u64(fh), u64(offset), u32s(size, 0), u64(0), u32s(0, 0)]);
    return this.call(Opcode.READ, 0n, body);
  }

  writeRequest(fh: bigint, offset: number, data: Buffer, sizeField = data.length): Buffer {
    const body = Buffer.concat([
      u64(fh),
      u64(offset),
      u32s(sizeField, 0),
      u64(0),
      u32s(0, 0),
      data,
    ]);
    return this.request(Opcode.WRITE, 0n, body);
  }

  async write(fh: bigint, offset: number, data: Buffer): Promise<number> {
    const reply = await this.raw(this.writeRequest(fh, offset, data));
    if (reply === undefined || reply.error !== 0) throw new FuseErrno(-(reply?.error ?? 0));
    return reply.payload.readUInt32LE(0);
  }

  async release(fh: bigint): Promise<void> {
    await this.call(Opcode.RELEASE, 0n, Buffer.concat([u64(fh), u32s(0, 0), u64(0)]));
  }

  async unlink(parent: bigint, name: string): Promise<void> {
    await this.call(Opcode.UNLINK, parent, cstr(name));
  }

  async rmdir(parent: bigint, name: string): Promise<void> {
    await this.call(Opcode.RMDIR, parent, cstr(name));
  }

  async rename(
    parent: bigint,
    name: string,
    newParent: bigint,
    newName: string,
    flags = 0,
  ): Promise<void> {
    const body = Buffer.concat([u64(newParent), u32s(flags, 0), cstr(name), cstr(newName)]);
    await this.call(Opcode.RENAME2, parent, body);
  }

  async symlink(parent: bigint, name: string, target: string): Promise<bigint> {
    return (
      await this.call(Opcode.SYMLINK, parent, Buffer.concat([cstr(name), cstr(target)]))
    ).readBigUInt64LE(0);
  }

  async readlink(nodeid: bigint): Promise<string> {
    return (await this.call(Opcode.READLINK, nodeid)).toString();
  }

  async link(oldNode: bigint, parent: bigint, name: string): Promise<bigint> {
    return (
      await this.call(Opcode.LINK, parent, Buffer.concat([u64(oldNode), cstr(name)]))
    ).readBigUInt64LE(0);
  }

  async forget(nodeid: bigint, count: number): Promise<void> {
    const reply = await this.raw(this.request(Opcode.FORGET, nodeid, u64(count)));
    if (reply !== undefined) throw new Error("FORGET must not be answered");
  }

  /** Opens, reads every entry (small buffers, to exercise offsets) and releases. */
  async readdir(nodeid: bigint, bufferBytes = 256): Promise<string[]> {
    const fh = (await this.call(Opcode.OPENDIR, nodeid, u32s(0, 0))).readBigUInt64LE(0);
    const names: string[] = [];
    let offset = 0;
    for (;;) {
      const body = Buffer.concat([u64(fh), u64(offset), u32s(bufferBytes, 0), u64(0), u32s(0, 0)]);
      const p = await this.call(Opcode.READDIR, nodeid, body);
      if (p.length === 0) break;
      for (let at = 0; at < p.length;) {
        const off = Number(p.readBigUInt64LE(at + 8));
        const len = p.readUInt32LE(at + 16);
        names.push(p.subarray(at + 24, at + 24 + len).toString());
        offset = off;
        at += (24 + len + 7) & ~7;
      }
    }
    await this.call(Opcode.RELEASEDIR, nodeid, Buffer.concat([u64(fh), u32s(0, 0), u64(0)]));
    return names.filter((n) => n !== "." && n !== "..").sort();
  }
}
