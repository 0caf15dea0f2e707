/**
 * Invalidation with a probe of the host state: the watcher reports the guest's own changes
 * too, and those must not cost the guest its cache; a change made behind its back must still
 * reach it. And the longer cache timeouts inside watched directories.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { NOTIFY_LOST_OPCODE, NotifyCode, Opcode } from "../../src/vfs/fuse-constants.js";
import {
  MemoryProvider,
  decodeInHeader,
  encodeRequest,
  type ProbedStat,
} from "../../src/vfs/index.js";
import { cstr } from "./vfs-fake-kernel.js";
import { flushed as tick, parse, served } from "./vfs-notify-helpers.js";

const ROOT = 1n;

/** A file the guest created (and so knows), and the state it was told. */
async function knownFile() {
  const provider = new MemoryProvider();
  const { server, k, sent } = await served({ provider });
  const dir = await k.mkdir(ROOT, "dir");
  const { nodeid: file, fh } = await k.create(dir, "f");
  await k.release(fh);
  await k.getattr(file);
  const told: ProbedStat = await provider.stat("/dir/f");
  return { server, k, sent, dir, file, told, provider };
}

test("echo: the host state is what the guest was told: nothing is invalidated", async () => {
  const { server, sent, told } = await knownFile();
  server.invalidate("/dir/f", () => told);
  server.invalidate("/dir/never-seen", () => null); // absent, and the guest holds no node
  await tick();
  assert.deepEqual(parse(sent()), []);
});

test("echo: same file, new content or attributes: only its node, not its name or parent", async () => {
  const { server, sent, told, file } = await knownFile();
  server.invalidate("/dir/f", () => ({ ...told, sizeBytes: told.sizeBytes + 1 }));
  await tick();
  assert.deepEqual(parse(sent()), [
    { code: NotifyCode.INVAL_INODE, nodeid: file, offset: 0n, length: 0n },
  ]);
});

test("echo: another file under the name, a deleted name, a new name, an unreadable probe: everything", async () => {
  const { server, sent, told, file, dir } = await knownFile();
  const all = [
    { code: NotifyCode.INVAL_ENTRY, parent: dir, name: "f" },
    { code: NotifyCode.INVAL_INODE, nodeid: file, offset: 0n, length: 0n },
    { code: NotifyCode.INVAL_INODE, nodeid: dir, offset: 0n, length: 0n },
  ];
  // Deleted last: a name the host removed is dropped from the table (the next test).
  for (const probe of [
    () => ({ ...told, ino: (told.ino ?? 0) + 1 }),
    () => undefined,
    () => {
      throw new Error("EACCES");
    },
    () => null,
  ]) {
    server.invalidate("/dir/f", probe);
    await tick();
    assert.deepEqual(parse(sent()), all);
  }
  // A name the guest may hold a negative entry for now exists on the host.
  server.invalidate("/dir/new", () => told);
  await tick();
  assert.deepEqual(parse(sent()), [
    { code: NotifyCode.INVAL_ENTRY, parent: dir, name: "new" },
    { code: NotifyCode.INVAL_INODE, nodeid: dir, offset: 0n, length: 0n },
  ]);
});

test("a hard link the host removed no longer names the file: its other name still stats", async () => {
  const { server, k, provider, file, dir } = await knownFile();
  await k.link(file, dir, "g"); // the guest's last lookup: the table builds the path from "g"
  await provider.unlink("/dir/g"); // the host removes that name behind the guest's back
  server.invalidate("/dir/g", () => null);
  await tick();
  const attr = await k.getattr(file);
  assert.equal(attr.nlink, 1);
});

test("echo: one report without a probe makes the path's invalidation unconditional", async () => {
  const { server, sent, told, file, dir } = await knownFile();
  server.invalidate("/dir/f", () => told);
  server.invalidate("/dir/f");
  server.invalidate("/dir/f", () => told);
  await tick();
  assert.deepEqual(parse(sent()), [
    { code: NotifyCode.INVAL_ENTRY, parent: dir, name: "f" },
    { code: NotifyCode.INVAL_INODE, nodeid: file, offset: 0n, length: 0n },
    { code: NotifyCode.INVAL_INODE, nodeid: dir, offset: 0n, length: 0n },
  ]);
});

/** The entry and attribute timeouts (seconds) of a LOOKUP reply. */
function timeoutsOf(entry: Buffer): { entryS: bigint; attrS: bigint } {
  return { entryS: entry.readBigUInt64LE(16), attrS: entry.readBigUInt64LE(24) };
}

test("watched timeouts: long where the policy says so (negative entries too), the default elsewhere", async () => {
  const { k } = await served({
    watchedTimeouts: (path) =>
      path.startsWith("/w/") ? { entryMs: 60_000, attrMs: 60_000 } : undefined,
  });
  const w = await k.mkdir(ROOT, "w");
  await k.mkdir(ROOT, "other");
  await k.create(w, "a");
  assert.deepEqual(timeoutsOf(await k.call(Opcode.LOOKUP, w, cstr("a"))), {
    entryS: 60n,
    attrS: 60n,
  });
  const missing = await k.call(Opcode.LOOKUP, w, cstr("missing"));
  assert.equal(missing.readBigUInt64LE(0), 0n, "a negative entry");
  assert.equal(timeoutsOf(missing).entryS, 60n);
  assert.deepEqual(timeoutsOf(await k.call(Opcode.LOOKUP, ROOT, cstr("other"))), {
    entryS: 1n,
    attrS: 1n,
  });
});

test("watched timeouts: once an invalidation was dropped, the short default applies everywhere", async () => {
  const { server, k } = await served({
    watchedTimeouts: () => ({ entryMs: 60_000, attrMs: 60_000 }),
  });
  const w = await k.mkdir(ROOT, "w");
  await k.create(w, "a");
  assert.equal(timeoutsOf(await k.call(Opcode.LOOKUP, w, cstr("a"))).entryS, 60n);
  for (let i = 0; i <= 4096; i++) server.invalidate(`/w/x${i}`);
  assert.equal(timeoutsOf(await k.call(Opcode.LOOKUP, w, cstr("a"))).entryS, 1n);
});

test("watched timeouts: the guest agent's report of a dropped notification ends them", async () => {
  const { server, k } = await served({
    watchedTimeouts: () => ({ entryMs: 60_000, attrMs: 60_000 }),
  });
  const w = await k.mkdir(ROOT, "w");
  await k.create(w, "a");
  assert.equal(timeoutsOf(await k.call(Opcode.LOOKUP, w, cstr("a"))).entryS, 60n);
  // What guest/fuse.c sends: a bare in-header with unique 0; it gets no reply.
  const report = encodeRequest({
    opcode: NOTIFY_LOST_OPCODE,
    unique: 0n,
    nodeid: 0n,
    uid: 0,
    gid: 0,
    pid: 0,
  });
  const reply = await server.handle({ header: decodeInHeader(report), body: Buffer.alloc(0) });
  assert.equal(reply, undefined);
  assert.equal(timeoutsOf(await k.call(Opcode.LOOKUP, w, cstr("a"))).entryS, 1n);
});
