import { test } from "node:test";
import assert from "node:assert/strict";
import { Errno, MemoryProvider } from "../../src/vfs/index.js";
import { posixSuite, kernelFor, rejectsErrno } from "./vfs-posix-suite.js";

posixSuite("memory", async () => ({ provider: new MemoryProvider() }));

test("memory: writes beyond maxBytes fail with ENOSPC and free space returns after unlink", async () => {
  const k = await kernelFor(new MemoryProvider({ maxBytes: 64 * 1024 }));
  const f = await k.create(1n, "fill");
  await k.write(f.fh, 0, Buffer.alloc(60 * 1024));
  await rejectsErrno(k.write(f.fh, 60 * 1024, Buffer.alloc(8 * 1024)), Errno.ENOSPC);
  await k.release(f.fh);
  await k.unlink(1n, "fill");
  const g = await k.create(1n, "again");
  assert.equal(await k.write(g.fh, 0, Buffer.alloc(60 * 1024)), 60 * 1024);
});

test("memory: new nodes belong to the caller", async () => {
  const k = await kernelFor(new MemoryProvider());
  k.uid = 1000;
  k.gid = 1001;
  const f = await k.create(1n, "mine");
  const attr = await k.getattr(f.nodeid);
  assert.deepEqual([attr.uid, attr.gid], [1000, 1001]);
});
