/**
 * The host's side of the FUSE relay's directory cache (src/vfs/relay-listing.ts): the pushes
 * written ahead of a guest request's reply, LIST_DIR and its bounds, the lookups a listing
 * counts, and the state a copy of the guest needs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { FuseServer, MemoryProvider, decodeInHeader, encodeRequest } from "../../src/vfs/index.js";
import { Duplex, PassThrough } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import {
  LIST_DIR_OPCODE,
  NotifyCode,
  Opcode,
  RELAY_NODE_ATTR,
  RELAY_SYNC_WRITES,
  RelayCode,
} from "../../src/vfs/fuse-constants.js";
import { FLUSH_DELAY_MS } from "../../src/vfs/fuse-notify.js";
import { MAX_LISTING_ENTRIES } from "../../src/vfs/relay-listing.js";
import { FakeKernel, cstr } from "./vfs-fake-kernel.js";

const ROOT = { uid: 0, gid: 0 };

interface Message {
  readonly unique: bigint;
  readonly code: number;
  readonly body: Buffer;
}

/**
 * Splits what the server wrote for one request into whole messages; a changed directory's
 * attributes for the relay (write-behind's, vfs-write-behind.test.ts) are left out.
 */
function split(bytes: Buffer | undefined): Message[] {
  const out: Message[] = [];
  let at = 0;
  while (bytes !== undefined && at < bytes.length) {
    const len = bytes.readUInt32LE(at);
    assert.ok(len >= 16 && at + len <= bytes.length, "a whole message");
    out.push({
      code: bytes.readInt32LE(at + 4),
      unique: bytes.readBigUInt64LE(at + 8),
      body: bytes.subarray(at + 16, at + len),
    });
    at += len;
  }
  return out.filter(
    (m) => m.unique !== 0n || (m.code !== RELAY_NODE_ATTR && m.code !== RELAY_SYNC_WRITES),
  );
}

class Relay {
  private unique = 1000n;
  readonly k: FakeKernel;
  constructor(readonly server: FuseServer) {
    this.k = new FakeKernel(server);
  }

  async send(opcode: number, nodeid: bigint, body: Buffer = Buffer.alloc(0)): Promise<Message[]> {
    const unique = opcode === LIST_DIR_OPCODE ? 0n : this.unique++;
    const bytes = encodeRequest({ opcode, unique, nodeid, uid: 0, gid: 0, pid: 1 }, body);
    return split(
      await this.server.handle({ header: decodeInHeader(bytes), body: bytes.subarray(40) }),
    );
  }

  listDir(dir: bigint, op = 0): Promise<Message[]> {
    const body = Buffer.alloc(8);
    body.writeUInt32LE(op, 0);
    return this.send(LIST_DIR_OPCODE, dir, body);
  }

  /** MKDIR, its pushes ignored: the new directory's node id. */
  async dir(parent: bigint, name: string): Promise<bigint> {
    return replyAndPushes(await this.mkdir(parent, name)).reply.body.readBigUInt64LE(0);
  }

  mkdir(parent: bigint, name: string): Promise<Message[]> {
    const body = Buffer.concat([Buffer.alloc(8), cstr(name)]);
    body.writeUInt32LE(0o755, 0);
    return this.send(Opcode.MKDIR, parent, body);
  }

  create(parent: bigint, name: string): Promise<Message[]> {
    const body = Buffer.concat([Buffer.alloc(16), cstr(name)]);
    body.writeUInt32LE(0o100644, 4);
    body.writeUInt32LE(0o2 /* O_RDWR */, 0);
    return this.send(Opcode.CREATE, parent, body);
  }
}

async function relayFor(provider = new MemoryProvider(), relayListings = true): Promise<Relay> {
  const r = new Relay(new FuseServer({ provider, relayListings }));
  await r.k.init();
  return r;
}

/** The reply among `msgs` (it comes last) and the relay's messages before it. */
function replyAndPushes(msgs: Message[]): { reply: Message; pushes: Message[] } {
  const reply = msgs[msgs.length - 1]!;
  assert.notEqual(reply.unique, 0n, "the reply comes last");
  return { reply, pushes: msgs.slice(0, -1) };
}

function pushName(m: Message): { dir: bigint; name: string; node: bigint } {
  const n = m.body.readUInt32LE(8);
  return {
    dir: m.body.readBigUInt64LE(0),
    node: m.body.readBigUInt64LE(16),
    name: m.body.subarray(24, 24 + n).toString(),
  };
}

interface Listing {
  dir: bigint;
  reply: boolean;
  negativeMs: number;
  entries: { name: string; nodeid?: bigint }[];
}

function parseListing(m: Message): Listing {
  assert.equal(m.code, RelayCode.DIR_LISTING);
  const b = m.body;
  const count = b.readUInt32LE(12);
  const entries: Listing["entries"] = [];
  let at = 32;
  for (let i = 0; i < count; i++) {
    const n = b.readUInt32LE(at);
    const has = b.readUInt32LE(at + 4) === 1;
    const nodeid = has ? b.readBigUInt64LE(at + 8) : undefined;
    const nameAt = at + 8 + (has ? 128 : 0);
    entries.push({ name: b.subarray(nameAt, nameAt + n).toString(), ...(has ? { nodeid } : {}) });
    at = nameAt + ((n + 7) & ~7);
  }
  assert.equal(at, b.length, "records fill the message");
  return {
    dir: b.readBigUInt64LE(0),
    reply: (b.readUInt32LE(8) & 1) === 1,
    negativeMs: Number(b.readBigUInt64LE(16)) * 1000 + b.readUInt32LE(24) / 1e6,
    entries,
  };
}

test("MKDIR pushes the new directory's empty listing before its reply; names made in it are pushed", async () => {
  const r = await relayFor();
  const made = replyAndPushes(await r.mkdir(1n, "d"));
  assert.equal(made.reply.code, 0);
  const dir = made.reply.body.readBigUInt64LE(0);
  assert.equal(made.pushes.length, 1, "the root is not held: only the new directory's listing");
  const listing = parseListing(made.pushes[0]!);
  assert.deepEqual(
    { dir: listing.dir, reply: listing.reply, entries: listing.entries },
    { dir, reply: false, entries: [] },
  );
  assert.ok(listing.negativeMs > 0 && listing.negativeMs <= 1000, "the default 1 s timeout");

  const created = replyAndPushes(await r.create(dir, "f"));
  assert.equal(created.reply.code, 0);
  assert.deepEqual(
    created.pushes.map((m) => [m.code, pushName(m).dir, pushName(m).name]),
    [[RelayCode.DIR_ADD, dir, "f"]],
  );
  const sub = replyAndPushes(await r.mkdir(dir, "sub"));
  assert.deepEqual(
    sub.pushes.map((m) => m.code),
    [RelayCode.DIR_ADD, RelayCode.DIR_LISTING],
    "the name in the held parent, then the new directory's listing",
  );
  const subDir = sub.reply.body.readBigUInt64LE(0);
  const unlinked = replyAndPushes(await r.send(Opcode.UNLINK, dir, cstr("f")));
  assert.deepEqual(
    unlinked.pushes.map((m) => [m.code, pushName(m).name]),
    [[RelayCode.DIR_REMOVE, "f"]],
  );
  assert.notEqual(pushName(unlinked.pushes[0]!).node, 0n, "the unlinked node is named");
  const removed = replyAndPushes(await r.send(Opcode.RMDIR, dir, cstr("sub")));
  assert.deepEqual(
    removed.pushes.map((m) => m.code),
    [RelayCode.DIR_REMOVE, RelayCode.DIR_DROP],
  );
  assert.equal(removed.pushes[1]!.body.readBigUInt64LE(0), subDir);
  // A failed request pushes nothing.
  const failed = replyAndPushes(await r.send(Opcode.UNLINK, dir, cstr("missing")));
  assert.notEqual(failed.reply.code, 0);
  assert.deepEqual(failed.pushes, []);
});

test("renames push the source's removal and the target's (re)addition", async () => {
  const r = await relayFor();
  const dir = replyAndPushes(await r.mkdir(1n, "d")).reply.body.readBigUInt64LE(0);
  await r.create(dir, "a");
  await r.create(dir, "b");
  const body = Buffer.concat([Buffer.alloc(8), cstr("a"), cstr("b")]);
  body.writeBigUInt64LE(dir, 0);
  const renamed = replyAndPushes(await r.send(Opcode.RENAME, dir, body));
  assert.equal(renamed.reply.code, 0);
  assert.deepEqual(
    renamed.pushes.map((m) => [m.code, pushName(m).name]),
    [
      [RelayCode.DIR_REMOVE, "a"],
      [RelayCode.DIR_ADD, "b"],
    ],
  );
});

test("without relayListings nothing is pushed and LIST_DIR is refused", async () => {
  const r = await relayFor(new MemoryProvider(), false);
  const made = await r.mkdir(1n, "d");
  assert.equal(made.length, 1, "the reply alone");
  const dir = made[0]!.body.readBigUInt64LE(0);
  const drop = await r.listDir(dir);
  assert.deepEqual(
    drop.map((m) => [m.unique, m.code]),
    [[0n, RelayCode.DIR_DROP]],
  );
  assert.equal(r.server.counts.relayDirs, 0);
});

test("LIST_DIR lists every name with a counted entry; FORGETs of them drain the table", async () => {
  const provider = new MemoryProvider();
  const r = await relayFor(provider);
  const base = r.server.counts.nodes;
  const made = await r.dir(1n, "d");
  await provider.mknod("/d/one", "file", 0o644, ROOT);
  await provider.mknod("/d/two", "file", 0o644, ROOT);
  await provider.mkdir("/d/sub", 0o755, ROOT);
  const before = r.server.counts.nodes;
  const msgs = await r.listDir(made);
  assert.equal(msgs.length, 1);
  const listing = parseListing(msgs[0]!);
  assert.equal(listing.reply, true);
  assert.equal(listing.dir, made);
  assert.deepEqual(listing.entries.map((e) => e.name).sort(), ["one", "sub", "two"]);
  assert.ok(listing.entries.every((e) => e.nodeid !== undefined && e.nodeid > 1n));
  assert.equal(r.server.counts.nodes, before + 3, "one node per listed name");
  assert.equal(r.server.counts.relayDirs, 1);
  // The relay hands one entry to the kernel (which forgets it later), FORGETs the others.
  const batch = Buffer.alloc(8 + 16 * 3);
  batch.writeUInt32LE(3, 0);
  listing.entries.forEach((e, i) => {
    batch.writeBigUInt64LE(e.nodeid!, 8 + i * 16);
    batch.writeBigUInt64LE(1n, 16 + i * 16);
  });
  await r.send(Opcode.BATCH_FORGET, 0n, batch);
  assert.equal(r.server.counts.nodes, before);
  await r.k.forget(made, 1);
  assert.equal(r.server.counts.nodes, base, "the table drains to where it started");
  // The relay let the listing go: nothing more is pushed for it.
  await r.listDir(made, 1);
  assert.equal(r.server.counts.relayDirs, 0);
});

/** A memory provider whose readdir waits until `release` (a listing caught half made). */
function gatedReaddir(): { provider: MemoryProvider; release: () => void } {
  const inner = new MemoryProvider();
  let release = (): void => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const provider = Object.create(inner) as MemoryProvider;
  provider.readdir = async (path: string) => {
    const names = await inner.readdir(path);
    await gate;
    return names;
  };
  return { provider, release: () => release() };
}

test("a listing taken while the guest changes the directory is followed by the push", async () => {
  // The stats of a listing are slow; a CREATE in the directory finishes meanwhile and its
  // ADD must be written (the relay then throws the older listing away when it arrives).
  const { provider, release } = gatedReaddir();
  const r = await relayFor(provider);
  const dir = await r.dir(1n, "d");
  const listing = r.listDir(dir);
  const created = replyAndPushes(await r.create(dir, "new"));
  assert.deepEqual(
    created.pushes.map((m) => m.code),
    [RelayCode.DIR_ADD],
  );
  release();
  assert.equal((await listing)[0]!.code, RelayCode.DIR_LISTING);
});

test("LIST_DIR on a file, an unknown node, a huge directory, or before INIT gets DROP and counts nothing", async () => {
  const provider = new MemoryProvider();
  const early = new Relay(new FuseServer({ provider, relayListings: true }));
  assert.deepEqual(
    (await early.listDir(1n)).map((m) => m.code),
    [RelayCode.DIR_DROP],
  );
  const r = await relayFor(provider);
  const file = (await r.k.create(1n, "f")).nodeid;
  const big = await r.dir(1n, "big");
  for (let i = 0; i <= MAX_LISTING_ENTRIES; i++)
    await provider.mknod(`/big/${i}`, "file", 0o644, ROOT);
  const nodes = r.server.counts.nodes;
  for (const id of [file, 999_999n, big]) {
    const msgs = await r.listDir(id);
    assert.deepEqual(
      msgs.map((m) => [m.unique, m.code, m.body.readBigUInt64LE(0), m.body.readUInt32LE(8)]),
      [[0n, RelayCode.DIR_DROP, id, 1]],
      `node ${id}`,
    );
  }
  assert.equal(r.server.counts.nodes, nodes, "nothing counted");
  assert.equal(r.server.counts.relayDirs, 0, "nothing held");
  // Garbage ops are ignored.
  assert.deepEqual(await r.listDir(big, 7), []);
});

test("a copy of the guest keeps pushing for the listings its relay holds", async () => {
  const provider = new MemoryProvider();
  const r = await relayFor(provider);
  const dir = replyAndPushes(await r.mkdir(1n, "d")).reply.body.readBigUInt64LE(0);
  const state = r.server.exportSession();
  assert.deepEqual(state?.relayDirs, [dir.toString()]);
  const copy = new Relay(new FuseServer({ provider, relayListings: true }));
  copy.server.resumeSession(state!);
  const created = replyAndPushes(await copy.create(dir, "f"));
  assert.deepEqual(
    created.pushes.map((m) => [m.code, pushName(m).name]),
    [[RelayCode.DIR_ADD, "f"]],
  );
});

test("a held directory replaced on the host gets DIR_DROP ahead of its invalidation; an attribute change does not", async () => {
  const provider = new MemoryProvider();
  const server = new FuseServer({ provider, relayListings: true });
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on("data", (c: Buffer) => chunks.push(c));
  server.attach(Duplex.from({ readable: new PassThrough(), writable: out }));
  const r = new Relay(server);
  await r.k.init();
  const dir = await r.dir(1n, "d");
  const stat = await provider.stat("/d");
  // Attributes only (the echo of the guest's own mkdir, whose mtime moved since).
  server.invalidate("/d", () => ({ ...stat, mtimeMs: stat.mtimeMs + 5000 }));
  await sleep(FLUSH_DELAY_MS + 20);
  assert.ok(
    split(Buffer.concat(chunks.splice(0))).every((m) => m.code !== RelayCode.DIR_DROP),
    "no DROP for an attribute change",
  );
  server.invalidate("/d"); // replaced: unconditional
  await sleep(FLUSH_DELAY_MS + 20);
  const sent = split(Buffer.concat(chunks.splice(0)));
  assert.deepEqual(
    sent.map((m) => m.code),
    [RelayCode.DIR_DROP, NotifyCode.INVAL_ENTRY, NotifyCode.INVAL_INODE, NotifyCode.INVAL_INODE],
  );
  assert.equal(sent[0]!.body.readBigUInt64LE(0), dir);
  assert.equal(server.counts.relayDirs, 0, "no longer held: no more pushes");
  assert.deepEqual(replyAndPushes(await r.create(dir, "f")).pushes, []);
});

test("a LIST_DIR being answered does not keep a copy from being made; its answer carries its number", async () => {
  const { provider, release } = gatedReaddir();
  const server = new FuseServer({ provider, relayListings: true });
  const guestIn = new PassThrough();
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on("data", (c: Buffer) => chunks.push(c));
  server.attach(Duplex.from({ readable: guestIn, writable: out }));
  const init = new FakeKernel(server).request(Opcode.INIT, 0n, Buffer.alloc(64));
  init.writeUInt32LE(7, 40);
  init.writeUInt32LE(31, 44);
  guestIn.write(init);
  await sleep(20);
  const body = Buffer.alloc(8);
  body.writeUInt32LE(0, 0);
  body.writeUInt32LE(77, 4);
  const ask = encodeRequest(
    { opcode: LIST_DIR_OPCODE, unique: 0n, nodeid: 1n, uid: 0, gid: 0, pid: 0 },
    body,
  );
  guestIn.write(ask);
  await sleep(20);
  assert.equal(server.counts.inFlight, 1, "the LIST_DIR is being answered");
  assert.notEqual(server.exportSession(), undefined, "a copy can still be made");
  release();
  await sleep(20);
  const answer = split(Buffer.concat(chunks)).find((m) => m.code === RelayCode.DIR_LISTING);
  assert.equal(answer?.body.readUInt32LE(28), 77, "the LIST_DIR's number, echoed");
});
