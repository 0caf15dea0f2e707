import { test } from "node:test";
import assert from "node:assert/strict";
import { FuseRequestStats, MemoryProvider, fuseRequestStats } from "../../src/vfs/index.js";
import { Opcode } from "../../src/vfs/fuse-constants.js";
import { FuseErrno } from "./vfs-fake-kernel.js";
import { kernelFor } from "./vfs-posix-suite.js";

test("request stats: every request the server handles is counted by opcode, errors included, while on", async () => {
  const k = await kernelFor(new MemoryProvider());
  fuseRequestStats.take();
  fuseRequestStats.enabled = true;
  try {
    await assert.rejects(k.lookup(1n, "missing"), FuseErrno);
    const dir = await k.mkdir(1n, "d");
    const { fh } = await k.create(dir, "f");
    await k.write(fh, 0, Buffer.from("abc"));
    await k.write(fh, 3, Buffer.from("def"));
    await k.release(fh);
    await k.raw(k.request(Opcode.SETXATTR, 1n, Buffer.alloc(64))); // ENOSYS: counted too
    const s = fuseRequestStats.take();
    assert.deepEqual(
      Object.fromEntries(Object.entries(s.byOpcode).map(([op, v]) => [op, v.requests])),
      { WRITE: 2, LOOKUP: 1, MKDIR: 1, CREATE: 1, RELEASE: 1, SETXATTR: 1 },
    );
    assert.equal(Object.keys(s.byOpcode)[0], "WRITE", "most requests first");
    assert.equal(s.requests, 7);
    assert.ok(s.hostMs >= 0 && Object.values(s.byOpcode).every((v) => v.hostMs >= 0));
    assert.equal(fuseRequestStats.take().requests, 0, "take starts afresh");
  } finally {
    fuseRequestStats.enabled = false;
  }
  await k.mkdir(1n, "e");
  assert.equal(fuseRequestStats.take().requests, 0, "nothing is counted while off");
});

test("request stats: notifications are summed only while on; unknown opcodes get a name", () => {
  const stats = new FuseRequestStats();
  stats.notified(3);
  stats.record(Opcode.LOOKUP, stats.start());
  assert.deepEqual(stats.take(), { requests: 0, hostMs: 0, notifications: 0, byOpcode: {} });
  stats.enabled = true;
  stats.notified(3);
  stats.notified(2);
  stats.record(9999, stats.start());
  const s = stats.take();
  assert.equal(s.notifications, 5);
  assert.deepEqual(Object.keys(s.byOpcode), ["OPCODE_9999"]);
});
