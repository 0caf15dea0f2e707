import { test } from "node:test";
import assert from "node:assert/strict";
import { Duplex, PassThrough } from "node:stream";
import {
  Errno,
  FuseFramer,
  FuseServer,
  MemoryProvider,
  encodeRequest,
  type FuseRequest,
  type VfsProvider,
} from "../../src/vfs/index.js";
import { InitFlag, MAX_REQUEST_BYTES, Opcode, SetattrValid } from "../../src/vfs/fuse-constants.js";
import { FakeKernel } from "./vfs-fake-kernel.js";
import { kernelFor, rejectsErrno } from "./vfs-posix-suite.js";

test("INIT negotiates 7.31, 1 MiB writes through MAX_PAGES, and only flags the kernel offered", async () => {
  const k = new FakeKernel(new FuseServer({ provider: new MemoryProvider() }));
  const out = await k.init(37, InitFlag.MAX_PAGES | InitFlag.ASYNC_READ | (1 << 16));
  assert.equal(out.length, 64);
  assert.equal(out.readUInt32LE(0), 7);
  assert.equal(out.readUInt32LE(4), 31);
  const flags = out.readUInt32LE(12);
  assert.equal(
    flags,
    InitFlag.MAX_PAGES | InitFlag.ASYNC_READ,
    "no writeback cache, nothing unoffered",
  );
  assert.equal(out.readUInt32LE(20), 1 << 20, "max_write");
  assert.equal(out.readUInt16LE(28), 256, "max_pages: the 6.1 kernel's FUSE_MAX_MAX_PAGES");
});

test("INIT: an old kernel is refused, a second INIT is an error, nothing is served before INIT", async () => {
  const old = new FakeKernel(new FuseServer({ provider: new MemoryProvider() }));
  await rejectsErrno(old.init(20), Errno.EPROTO);
  const k = new FakeKernel(new FuseServer({ provider: new MemoryProvider() }));
  await rejectsErrno(k.lookup(1n, "x"), Errno.EIO);
  await k.init();
  await rejectsErrno(k.init(), Errno.EIO);
});

test("malformed requests get an error reply for their own unique, never an exception", async () => {
  const k = await kernelFor(new MemoryProvider());
  const cases: [number, Buffer, number][] = [
    [Opcode.LOOKUP, Buffer.from("no-terminator"), Errno.EINVAL],
    [Opcode.GETATTR, Buffer.alloc(3), Errno.EINVAL],
    [Opcode.SETATTR, Buffer.alloc(10), Errno.EINVAL],
    [Opcode.MKDIR, Buffer.alloc(4), Errno.EINVAL],
    [Opcode.RENAME2, Buffer.alloc(12), Errno.EINVAL],
    [Opcode.READ, Buffer.alloc(16), Errno.EINVAL],
    [Opcode.WRITE, Buffer.alloc(39), Errno.EINVAL],
    [Opcode.CREATE, Buffer.alloc(16), Errno.EINVAL],
    [Opcode.LINK, Buffer.alloc(8), Errno.EINVAL],
    [Opcode.SYMLINK, Buffer.from("name\0"), Errno.EINVAL],
    [9999, Buffer.alloc(0), Errno.ENOSYS],
    [Opcode.SETXATTR, Buffer.alloc(64), Errno.ENOSYS],
  ];
  for (const [opcode, body, errno] of cases) {
    const reply = await k.raw(k.request(opcode, 1n, body));
    assert.equal(reply?.error, -errno, `opcode ${opcode}`);
  }
  // The u64 size of a SETATTR beyond 2^53 cannot be a real size.
  const huge = Buffer.alloc(88);
  huge.writeUInt32LE(8, 0);
  huge.writeBigUInt64LE(2n ** 63n, 16);
  assert.equal((await k.raw(k.request(Opcode.SETATTR, 1n, huge)))?.error, -Errno.EINVAL);
});

test("reads larger than max_write and writes whose size field lies are refused", async () => {
  const k = await kernelFor(new MemoryProvider());
  const f = await k.create(1n, "f");
  await rejectsErrno(k.read(f.fh, 0, 0xffffffff), Errno.EINVAL);
  const lying = k.writeRequest(f.fh, 0, Buffer.from("abc"), 1000);
  assert.equal((await k.raw(lying))?.error, -Errno.EINVAL);
  const tooBig = k.writeRequest(f.fh, 0, Buffer.alloc((1 << 20) + 1));
  assert.equal((await k.raw(tooBig))?.error, -Errno.EINVAL);
  assert.equal((await k.getattr(f.nodeid)).size, 0);
});

test("FORGET drops node ids once their lookup count reaches zero and is never answered", async () => {
  const k = await kernelFor(new MemoryProvider());
  const server = k.server;
  const f = await k.create(1n, "f");
  await k.release(f.fh);
  await k.lookup(1n, "f");
  await k.lookup(1n, "f");
  const before = server.counts.nodes;
  await k.forget(f.nodeid, 2);
  assert.equal(server.counts.nodes, before, "one lookup is still held");
  await k.forget(f.nodeid, 1);
  assert.equal(server.counts.nodes, before - 1);
  await rejectsErrno(k.getattr(f.nodeid), Errno.ENOENT);
  const again = await k.lookup(1n, "f");
  assert.notEqual(again.nodeid, f.nodeid, "node ids are never reused");
  const batch = Buffer.alloc(8 + 16);
  batch.writeUInt32LE(5, 0); // claims 5 entries, carries 1: handled, not answered
  batch.writeBigUInt64LE(again.nodeid, 8);
  batch.writeBigUInt64LE(1n, 16);
  assert.equal(await k.raw(k.request(Opcode.BATCH_FORGET, 0n, batch)), undefined);
  assert.equal(server.counts.nodes, before - 1);
});

/** A provider whose reads of "slow" wait until released, to force out-of-order replies. */
function gatedProvider(): { provider: VfsProvider; release: () => void } {
  const inner = new MemoryProvider();
  let release = (): void => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const provider = Object.create(inner) as VfsProvider;
  provider.stat = async (path: string) => {
    if (path === "/slow") await gate;
    return inner.stat(path === "/slow" ? "/" : path);
  };
  return { provider, release: () => release() };
}

function pipePair(): { host: Duplex; guestIn: PassThrough; guestOut: PassThrough } {
  const guestIn = new PassThrough();
  const guestOut = new PassThrough();
  const host = Duplex.from({ readable: guestIn, writable: guestOut });
  return { host, guestIn, guestOut };
}

test("requests are served concurrently over a stream and replies carry their own unique", async () => {
  const { provider, release } = gatedProvider();
  const server = new FuseServer({ provider });
  const { host, guestIn, guestOut } = pipePair();
  server.attach(host);
  const replies: bigint[] = [];
  guestOut.on("data", (chunk: Buffer) => {
    for (let at = 0; at < chunk.length;) {
      const len = chunk.readUInt32LE(at);
      replies.push(chunk.readBigUInt64LE(at + 8));
      at += len;
    }
  });
  const init = Buffer.alloc(64);
  init.writeUInt32LE(7, 0);
  init.writeUInt32LE(37, 4);
  const req = (unique: bigint, opcode: number, body: Buffer): Buffer =>
    encodeRequest({ opcode, unique, nodeid: 1n, uid: 0, gid: 0, pid: 1 }, body);
  guestIn.write(req(1n, Opcode.INIT, init));
  // One request split across writes byte by byte, then two at once in one chunk.
  const slow = req(2n, Opcode.LOOKUP, Buffer.from("slow\0"));
  for (const byte of slow) guestIn.write(Buffer.from([byte]));
  guestIn.write(
    Buffer.concat([
      req(3n, Opcode.LOOKUP, Buffer.from("nope\0")),
      req(4n, Opcode.STATFS, Buffer.alloc(0)),
    ]),
  );
  await waitFor(() => replies.length === 3);
  assert.deepEqual(
    [...replies].sort(),
    [1n, 3n, 4n],
    "the slow lookup does not hold up later requests",
  );
  assert.equal(server.counts.inFlight, 1);
  release();
  await waitFor(() => replies.length === 4);
  assert.equal(replies[3], 2n);
  await server.close();
});

test("a corrupt length field stops the server and reports it, without buffering the claimed size", async () => {
  let failure: Error | undefined;
  const server = new FuseServer({
    provider: new MemoryProvider(),
    onError: (err) => (failure = err),
  });
  const { host, guestIn } = pipePair();
  server.attach(host);
  const bogus = Buffer.alloc(40);
  bogus.writeUInt32LE(MAX_REQUEST_BYTES + 1, 0);
  guestIn.write(bogus);
  await waitFor(() => failure !== undefined);
  assert.match(String(failure?.message), /out of range/);
  assert.ok(host.destroyed);
});

test("framer: a length below the header size is corrupt; whole requests are delivered intact", () => {
  const got: FuseRequest[] = [];
  const errors: string[] = [];
  const framer = new FuseFramer(
    (r) => got.push(r),
    (e) => errors.push(e),
  );
  const good = encodeRequest(
    { opcode: Opcode.GETATTR, unique: 9n, nodeid: 1n, uid: 5, gid: 6, pid: 7 },
    Buffer.alloc(16, 1),
  );
  framer.push(Buffer.concat([good, good.subarray(0, 10)]));
  framer.push(good.subarray(10));
  assert.equal(got.length, 2);
  assert.equal(got[1]?.header.uid, 5);
  assert.equal(got[1]?.body.length, 16);
  const short = Buffer.alloc(40);
  short.writeUInt32LE(39, 0);
  framer.push(short);
  assert.equal(errors.length, 1);
  framer.push(good);
  assert.equal(got.length, 2, "nothing after corruption");
});

async function waitFor(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("a guest that stops reading replies stalls itself, not host memory", async () => {
  const { createServer, connect } = await import("node:net");
  const { mkdtemp, rm } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dir = await mkdtemp(join(tmpdir(), "wheellock-vfs-bp-"));
  const provider = new MemoryProvider();
  const file = await provider.create(
    "/f",
    0o644,
    { read: true, write: true, append: false, truncate: false },
    { uid: 0, gid: 0 },
  );
  await file.write(0, Buffer.alloc(1 << 20, 1));
  const server = new FuseServer({ provider, maxInFlightBytes: 4 << 20 });
  const listener = createServer((s) => server.attach(s));
  const path = join(dir, "fuse.sock");
  await new Promise<void>((r) => listener.listen(path, r));
  const guest = connect(path);
  // Cleanup in finally: a failed wait must not leave the socket open and the file hanging.
  try {
    let received = 0;
    guest.on("data", (d: Buffer) => (received += d.length));
    const k = new FakeKernel(server);
    const init = Buffer.alloc(64);
    init.writeUInt32LE(7, 0);
    init.writeUInt32LE(37, 4);
    guest.write(k.request(Opcode.INIT, 0n, init));
    const openBody = Buffer.alloc(8);
    openBody.writeUInt32LE(2, 0);
    guest.write(k.request(Opcode.LOOKUP, 1n, Buffer.from("f\0")));
    await waitFor(() => received > 0);
    guest.write(k.request(Opcode.OPEN, 2n, openBody));
    await waitFor(() => server.counts.handles === 1);
    guest.pause();
    const READS = 64;
    for (let i = 0; i < READS; i++) {
      const body = Buffer.alloc(40);
      body.writeBigUInt64LE(1n, 0);
      body.writeUInt32LE(1 << 20, 16);
      guest.write(k.request(Opcode.READ, 0n, body));
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(server.counts.inFlight < READS, `server kept reading: ${server.counts.inFlight}`);
    guest.resume();
    // 64 MiB through a unix socket: generous, a loaded machine moves it slowly.
    await waitFor(() => received >= READS * ((1 << 20) + 16), 60_000);
  } finally {
    guest.destroy();
    await server.close();
    listener.close();
  }
  await rm(dir, { recursive: true, force: true });
});

test("a missing name is a cacheable negative entry, and ENOENT where caching is off", async () => {
  const k = await kernelFor(new MemoryProvider());
  const p = await k.call(Opcode.LOOKUP, 1n, Buffer.from("missing\0"));
  assert.equal(p.readBigUInt64LE(0), 0n, "nodeid 0: negative entry");
  assert.equal(p.readBigUInt64LE(16) * 1000n + BigInt(p.readUInt32LE(32)) / 1_000_000n, 1000n);
  assert.equal(k.server.counts.nodes, 1, "no node is remembered for a miss");
  const uncached = new FakeKernel(
    new FuseServer({ provider: new MemoryProvider(), entryTimeoutMs: 0 }),
  );
  await uncached.init();
  await rejectsErrno(uncached.call(Opcode.LOOKUP, 1n, Buffer.from("missing\0")), Errno.ENOENT);
});

test("STATFS, ACCESS, FLUSH, FSYNC, INTERRUPT and DESTROY", async () => {
  const k = await kernelFor(new MemoryProvider({ maxBytes: 1 << 20 }));
  const statfs = await k.call(Opcode.STATFS, 1n);
  assert.equal(statfs.length, 80);
  assert.equal(statfs.readUInt32LE(40), 4096, "bsize");
  assert.equal(statfs.readUInt32LE(44), 255, "namelen");
  assert.equal(Number(statfs.readBigUInt64LE(0)), 256, "1 MiB in 4 KiB blocks");
  await k.call(Opcode.ACCESS, 1n, Buffer.alloc(8));
  await rejectsErrno(k.call(Opcode.ACCESS, 77n, Buffer.alloc(8)), Errno.ENOENT);
  const f = await k.create(1n, "f");
  const fhBody = Buffer.alloc(24);
  fhBody.writeBigUInt64LE(f.fh, 0);
  // FLUSH is answered (not ENOSYS, which would stop the kernel sending it): the guest's relay
  // reports write-behind errors in its reply (guest/fuse_wb.c).
  assert.equal((await k.call(Opcode.FLUSH, f.nodeid, fhBody)).length, 0);
  await k.call(Opcode.FSYNC, f.nodeid, fhBody.subarray(0, 16));
  const interrupt = Buffer.alloc(8);
  interrupt.writeBigUInt64LE(5n, 0);
  assert.equal(await k.raw(k.request(Opcode.INTERRUPT, 0n, interrupt)), undefined);
  await rejectsErrno(k.call(Opcode.OPENDIR, f.nodeid, Buffer.alloc(8)), Errno.ENOTDIR);
  await k.call(Opcode.DESTROY, 0n);
  assert.equal(k.server.counts.handles, 0, "DESTROY closes every handle");
  await rejectsErrno(k.lookup(1n, "f"), Errno.EIO);
});

test("HANDLE_KILLPRIV: set-id bits go on chown, truncate and a write's bare SETATTR, not on chmod", async () => {
  const out = await new FakeKernel(new FuseServer({ provider: new MemoryProvider() })).init();
  assert.ok((out.readUInt32LE(12) & InitFlag.HANDLE_KILLPRIV) !== 0, "negotiated");
  const k = await kernelFor(new MemoryProvider());
  const { nodeid, fh } = await k.create(1n, "f", 0o644);
  const bare = async (valid: number): Promise<number> => {
    const body = Buffer.alloc(88);
    body.writeUInt32LE(valid, 0);
    body.writeBigUInt64LE(fh, 8);
    return (await k.call(Opcode.SETATTR, nodeid, body)).readUInt32LE(16 + 60) & 0o7777;
  };
  assert.equal(
    (await k.setattr(nodeid, { mode: 0o6755 })).mode & 0o7777,
    0o6755,
    "chmod keeps them",
  );
  assert.equal((await k.setattr(nodeid, { uid: 0 })).mode & 0o7777, 0o755, "chown clears both");
  await k.setattr(nodeid, { mode: 0o6745 });
  assert.equal(
    (await k.setattr(nodeid, { size: 0 })).mode & 0o7777,
    0o2745,
    "no g+x: S_ISGID stays",
  );
  await k.setattr(nodeid, { mode: 0o4755 });
  assert.equal(await bare(SetattrValid.FH), 0o755, "a write's SETATTR with no attribute");
  await k.setattr(nodeid, { mode: 0o4755 });
  assert.equal(await bare(SetattrValid.FH | SetattrValid.MTIME), 0o4755, "times alone keep them");
  const dir = await k.mkdir(1n, "d", 0o4755);
  assert.equal((await k.setattr(dir, { uid: 0 })).mode & 0o7777, 0o4755, "directories keep them");
});
