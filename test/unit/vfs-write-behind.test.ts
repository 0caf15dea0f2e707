/**
 * Write-behind (guest/fuse_wb.c): the guest's relay answers WRITE, RELEASE and predictable
 * SETATTRs itself and marks them (RELAY_ANSWERED_FLAG) on their way to the host. The server
 * must apply them before any later request (a READ sees the WRITE, a RENAME comes after the
 * chmod) and in arrival order among themselves; a hostile guest's marker changes only that.
 * These tests play the relay over a stream, as FuseServer.attach serves it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Duplex, PassThrough } from "node:stream";
import {
  Errno,
  FuseServer,
  MemoryProvider,
  encodeRequest,
  type VfsHandle,
  type VfsProvider,
} from "../../src/vfs/index.js";
import {
  Opcode,
  RELAY_ANSWERED_FLAG,
  RELAY_BEHIND_DONE,
  RELAY_NODE_ATTR,
  SetattrValid,
} from "../../src/vfs/fuse-constants.js";

interface Reply {
  readonly error: number;
  readonly payload: Buffer;
}

/** The relay's end of the stream: sends raw requests, collects replies by unique. */
class Relay {
  private unique = 1n;
  private readonly guestIn = new PassThrough();
  private readonly replies = new Map<bigint, Reply>();
  private pending = Buffer.alloc(0);
  /** From WL_RELAY_BEHIND_DONE messages: marked requests done, and the errors among them. */
  behindDone = 0;
  readonly behindErrors = new Map<bigint, number>();
  /** RELAY_NODE_ATTR pushes as "attr <nodeid> <nlink>" and replies as "reply <unique>", in order. */
  readonly order: string[] = [];

  constructor(readonly server: FuseServer) {
    const guestOut = new PassThrough();
    server.attach(Duplex.from({ readable: this.guestIn, writable: guestOut }));
    guestOut.on("data", (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= 16 && this.pending.length >= this.pending.readUInt32LE(0)) {
        const len = this.pending.readUInt32LE(0);
        const unique = this.pending.readBigUInt64LE(8);
        if (unique === 0n && this.pending.readUInt32LE(4) === RELAY_BEHIND_DONE) {
          this.behindDone += this.pending.readUInt32LE(16);
          for (let i = 0; i < this.pending.readUInt32LE(20); i++)
            this.behindErrors.set(
              this.pending.readBigUInt64LE(24 + 16 * i),
              this.pending.readInt32LE(32 + 16 * i),
            );
          this.pending = this.pending.subarray(len);
          continue;
        }
        if (unique === 0n && this.pending.readUInt32LE(4) === RELAY_NODE_ATTR) {
          const nlink = this.pending.readUInt32LE(24 + 16 + 64);
          this.order.push(`attr ${this.pending.readBigUInt64LE(16)} ${nlink}`);
          this.pending = this.pending.subarray(len);
          continue;
        }
        if (unique === 0n) {
          // The directory cache's pushes (vfs-relay-listing.test.ts) are not this test's.
          this.pending = this.pending.subarray(len);
          continue;
        }
        this.order.push(`reply ${unique}`);
        this.replies.set(unique, {
          error: -this.pending.readInt32LE(4) || 0,
          payload: Buffer.from(this.pending.subarray(16, len)),
        });
        this.pending = this.pending.subarray(len);
      }
    });
  }

  send(opcode: number, nodeid: bigint, body: Buffer = Buffer.alloc(0), marked = false): bigint {
    const unique = this.unique++;
    const relayFlags = marked ? RELAY_ANSWERED_FLAG : 0;
    this.guestIn.write(
      encodeRequest({ opcode, unique, nodeid, uid: 0, gid: 0, pid: 1, relayFlags }, body),
    );
    return unique;
  }

  async done(count: number): Promise<void> {
    for (let i = 0; i < 500 && this.behindDone < count; i++) await sleep(2);
    assert.equal(this.behindDone, count, "write-behind requests reported done");
  }

  answered(unique: bigint): boolean {
    return this.replies.has(unique);
  }

  async reply(unique: bigint): Promise<Reply> {
    for (let i = 0; i < 500 && !this.replies.has(unique); i++) await sleep(2);
    const r = this.replies.get(unique);
    if (r === undefined) throw new Error(`no reply to ${unique}`);
    return r;
  }

  async call(opcode: number, nodeid: bigint, body?: Buffer): Promise<Buffer> {
    const r = await this.reply(this.send(opcode, nodeid, body));
    if (r.error !== 0) throw new Error(`errno ${r.error}`);
    return r.payload;
  }

  async init(): Promise<void> {
    const body = Buffer.alloc(64);
    body.writeUInt32LE(7, 0);
    body.writeUInt32LE(37, 4);
    await this.call(Opcode.INIT, 0n, body);
  }

  async create(name: string): Promise<{ nodeid: bigint; fh: bigint }> {
    const head = Buffer.alloc(16);
    head.writeUInt32LE(2, 0); // O_RDWR
    head.writeUInt32LE(0o100644, 4);
    const p = await this.call(Opcode.CREATE, 1n, Buffer.concat([head, Buffer.from(`${name}\0`)]));
    return { nodeid: p.readBigUInt64LE(0), fh: p.readBigUInt64LE(128) };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function writeBody(fh: bigint, offset: number, data: Buffer): Buffer {
  const b = Buffer.alloc(40);
  b.writeBigUInt64LE(fh, 0);
  b.writeBigUInt64LE(BigInt(offset), 8);
  b.writeUInt32LE(data.length, 16);
  return Buffer.concat([b, data]);
}

function readBody(fh: bigint, offset: number, size: number): Buffer {
  const b = Buffer.alloc(40);
  b.writeBigUInt64LE(fh, 0);
  b.writeBigUInt64LE(BigInt(offset), 8);
  b.writeUInt32LE(size, 16);
  return b;
}

function chmodBody(mode: number): Buffer {
  const b = Buffer.alloc(88);
  b.writeUInt32LE(SetattrValid.MODE, 0);
  b.writeUInt32LE(mode, 68);
  return b;
}

function getattrMode(payload: Buffer): number {
  return payload.readUInt32LE(16 + 60);
}

/** A memory provider whose setattr and file writes wait while `hold()` is on. */
function gated(): {
  provider: VfsProvider;
  hold: () => void;
  admit: () => void;
  release: () => void;
} {
  const inner = new MemoryProvider();
  let gate: Promise<void> | undefined;
  let open = (): void => undefined;
  const wait = async (): Promise<void> => {
    if (gate !== undefined) await gate;
  };
  const provider = Object.create(inner) as VfsProvider;
  provider.setattr = async (path, attrs) => {
    await wait();
    return inner.setattr(path, attrs);
  };
  provider.create = async (path, mode, flags, owner) => {
    const handle = await inner.create(path, mode, flags, owner);
    const wrapped: VfsHandle = Object.create(handle) as VfsHandle;
    wrapped.write = async (offset, data) => {
      await wait();
      return handle.write(offset, data);
    };
    return wrapped;
  };
  return {
    provider,
    hold: () => (gate = new Promise<void>((resolve) => (open = resolve))),
    // Calls from now on pass; those already waiting wait for `release`.
    admit: () => (gate = undefined),
    release: () => {
      gate = undefined;
      open();
    },
  };
}

test("failure: a READ right after a written-behind WRITE waits for it and sees its data", async () => {
  const { provider, hold, release } = gated();
  const relay = new Relay(new FuseServer({ provider }));
  await relay.init();
  const f = await relay.create("f");
  hold();
  relay.send(Opcode.WRITE, f.nodeid, writeBody(f.fh, 0, Buffer.from("hello")), true);
  const read = relay.send(Opcode.READ, f.nodeid, readBody(f.fh, 0, 100));
  await sleep(50);
  assert.equal(relay.answered(read), false, "the READ waits for the slow WRITE before it");
  release();
  const r = await relay.reply(read);
  assert.equal(r.error, 0);
  assert.equal(r.payload.toString(), "hello");
  await relay.server.close();
});

test("failure: chmod written behind, then rename: the rename waits and the file keeps the mode", async () => {
  const { provider, hold, release } = gated();
  const relay = new Relay(new FuseServer({ provider }));
  await relay.init();
  const f = await relay.create("f");
  hold();
  const chmod = relay.send(Opcode.SETATTR, f.nodeid, chmodBody(0o100600), true);
  const renameBody = Buffer.alloc(8);
  renameBody.writeBigUInt64LE(1n);
  const rename = relay.send(Opcode.RENAME, 1n, Buffer.concat([renameBody, Buffer.from("f\0g\0")]));
  await sleep(50);
  assert.equal(relay.answered(rename), false, "the rename waits for the chmod before it");
  release();
  assert.equal((await relay.reply(rename)).error, 0);
  assert.equal(relay.behindDone, 1, "the chmod was reported done before the rename's reply");
  assert.equal(relay.behindErrors.size, 0, "the chmod reached the file by its old name");
  assert.equal(relay.answered(chmod), false, "no reply of its own: the relay answered it");
  const lookup = await relay.call(Opcode.LOOKUP, 1n, Buffer.from("g\0"));
  assert.equal(lookup.readUInt32LE(40 + 60) & 0o7777, 0o600);
  await relay.server.close();
});

test("failure: written-behind requests run in arrival order (a slow first WRITE is not overwritten by it)", async () => {
  const { provider, hold, admit, release } = gated();
  const relay = new Relay(new FuseServer({ provider }));
  await relay.init();
  const f = await relay.create("f");
  hold();
  relay.send(Opcode.WRITE, f.nodeid, writeBody(f.fh, 0, Buffer.from("first")), true);
  await sleep(20);
  admit();
  setTimeout(release, 50);
  relay.send(Opcode.WRITE, f.nodeid, writeBody(f.fh, 0, Buffer.from("later")), true);
  await relay.done(2);
  await sleep(80); // both done whatever their order
  const data = await relay.call(Opcode.READ, f.nodeid, readBody(f.fh, 0, 100));
  assert.equal(data.toString(), "later");
  await relay.server.close();
});

test("failure: a GETATTR after a written-behind chmod sees the new mode", async () => {
  const { provider, hold, release } = gated();
  const relay = new Relay(new FuseServer({ provider }));
  await relay.init();
  const f = await relay.create("f");
  hold();
  relay.send(Opcode.SETATTR, f.nodeid, chmodBody(0o100640), true);
  const getattr = relay.send(Opcode.GETATTR, f.nodeid, Buffer.alloc(16));
  setTimeout(release, 30);
  assert.equal(getattrMode((await relay.reply(getattr)).payload) & 0o7777, 0o640);
  await relay.server.close();
});

test("attack: the marker on anything only orders: every request is still checked and answered", async () => {
  const relay = new Relay(new FuseServer({ provider: new MemoryProvider(), maxInFlight: 8 }));
  await relay.init();
  const f = await relay.create("f");
  const missing = relay.send(Opcode.LOOKUP, 1n, Buffer.from("nope\0"), true);
  const badHandle = relay.send(Opcode.WRITE, f.nodeid, writeBody(999n, 0, Buffer.from("x")), true);
  const flushBody = Buffer.alloc(24);
  flushBody.writeBigUInt64LE(12345n, 0);
  const flush = relay.send(Opcode.FLUSH, 77n, flushBody);
  const badNode = relay.send(Opcode.SETATTR, 4242n, chmodBody(0o100777), true);
  // A FLUSH's reply comes after the report of the marked requests before it.
  assert.equal(
    (await relay.reply(flush)).error,
    0,
    "FLUSH of an unknown handle: nothing to report",
  );
  assert.ok(relay.behindDone >= 2);
  assert.equal(relay.behindErrors.get(badHandle), Errno.EBADF, "still checked");
  await relay.done(3);
  assert.equal(relay.behindErrors.get(badNode), Errno.ENOENT);
  assert.equal(relay.behindErrors.has(missing), false);
  assert.equal(relay.answered(missing) || relay.answered(badHandle), false);
  // A flood of marked requests is held to the in-flight limit like any other.
  const uniques: bigint[] = [];
  let most = 0;
  for (let i = 0; i < 200; i++) {
    uniques.push(relay.send(Opcode.WRITE, f.nodeid, writeBody(f.fh, i, Buffer.from("y")), true));
    most = Math.max(most, relay.server.counts.inFlight);
  }
  for (let i = 0; i < 100 && relay.behindDone < 203; i++) {
    await sleep(2);
    most = Math.max(most, relay.server.counts.inFlight);
  }
  await relay.done(203);
  assert.ok(uniques.every((u) => !relay.behindErrors.has(u)));
  assert.ok(most <= 8, `at most 8 in flight, saw ${most}`);
  const data = await relay.call(Opcode.READ, f.nodeid, readBody(f.fh, 0, 300));
  assert.equal(data.toString(), "y".repeat(200));
  assert.equal(relay.server.counts.inFlight, 0);
  await relay.server.close();
});

test("a directory's attributes after a change are pushed to the relay before the change's reply", async () => {
  // Pushed only where the relay answers requests itself (not with file hooks).
  const relay = new Relay(new FuseServer({ provider: new MemoryProvider(), relayListings: true }));
  await relay.init();
  relay.order.length = 0;
  const mkdirBody = Buffer.alloc(8);
  mkdirBody.writeUInt32LE(0o755, 0);
  const mkdir = relay.send(Opcode.MKDIR, 1n, Buffer.concat([mkdirBody, Buffer.from("d\0")]));
  await relay.reply(mkdir);
  const d = (await relay.reply(mkdir)).payload.readBigUInt64LE(0);
  const rmdir = relay.send(Opcode.RMDIR, 1n, Buffer.from("d\0"));
  await relay.reply(rmdir);
  const missing = relay.send(Opcode.UNLINK, 1n, Buffer.from("nope\0"));
  assert.equal((await relay.reply(missing)).error, Errno.ENOENT);
  assert.deepEqual(
    relay.order,
    ["attr 1 3", `reply ${mkdir}`, "attr 1 2", `reply ${rmdir}`, `reply ${missing}`],
    "a failed change pushes nothing",
  );
  assert.ok(d > 1n);
  await relay.server.close();
});
