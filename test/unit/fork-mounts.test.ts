// Copies of a sandbox (fork, checkpoint) and its mounts: a copy's FUSE server answers for the
// node ids the copied guest kernel holds, and read-write host directories become what
// `forkMounts` says, never silently shared.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mountsForCopy, type MountConfig } from "../../src/config/index.js";
import { FuseServer, MemoryProvider } from "../../src/vfs/index.js";
import { FakeKernel } from "./vfs-fake-kernel.js";

test("a copy's FUSE server answers for the node ids of the original's session", async () => {
  const provider = new MemoryProvider();
  const original = new FuseServer({ provider });
  const k = new FakeKernel(original);
  await k.init();
  const dir = await k.mkdir(1n, "dir");
  const created = await k.create(dir, "file");
  await k.write(created.fh, 0, Buffer.from("hello"));
  // A file open: its handle would be the original's alone, so no session is exported.
  assert.equal(original.exportSession(), undefined);
  await k.release(created.fh);
  const session = original.exportSession();
  assert.ok(session?.initialized);
  // Through JSON, as a checkpoint's manifest carries it.
  const copy = new FuseServer({ provider });
  copy.resumeSession(JSON.parse(JSON.stringify(session)) as typeof session);
  const ck = new FakeKernel(copy);
  // No INIT: the copied kernel has one session, already initialised.
  const fh = await ck.open(created.nodeid);
  assert.equal((await ck.read(fh, 0, 5)).toString(), "hello");
  await ck.release(fh);
  assert.equal((await ck.lookup(dir, "file")).nodeid, created.nodeid, "same name, same id");
  const fresh = await ck.mkdir(1n, "new");
  assert.ok(fresh > created.nodeid, "new ids never reuse the original's");
  // A server that has served cannot take over another session.
  assert.throws(() => original.resumeSession(session));
});

test("forkMounts: read-write host directories become an overlay, read-only or shared", () => {
  const mounts: Record<string, MountConfig> = {
    "/work": { type: "host_fs", hostPath: "/h/work", owner: { uid: 1, gid: 1 } },
    "/ro": { type: "host_fs", hostPath: "/h/ro", readonly: true },
  };
  assert.deepEqual(mountsForCopy(mounts, "overlay"), {
    "/work": { type: "overlay", hostPath: "/h/work", owner: { uid: 1, gid: 1 } },
    "/ro": mounts["/ro"],
  });
  assert.deepEqual(mountsForCopy(mounts, "readonly")["/work"], {
    ...mounts["/work"],
    readonly: true,
  });
  assert.deepEqual(mountsForCopy(mounts, "share"), mounts);
  assert.throws(
    () => mountsForCopy({ "/p": { type: "provider" } }, "share"),
    (err: Error & { code?: string }) =>
      err.code === "ErrInvalidConfig" && /mount \/p is a custom provider mount/.test(err.message),
  );
});

test("forkMounts: memory and overlay mounts stay what they are (their contents are per copy)", () => {
  const mounts: Record<string, MountConfig> = {
    "/m": { type: "memory", quota: { sizeBytes: 1 << 20 } },
    "/o": { type: "overlay", hostPath: "/h/o" },
  };
  // `share` has no host place to share them in: each copy gets its own, as with `overlay`.
  assert.deepEqual(mountsForCopy(mounts, "overlay"), mounts);
  assert.deepEqual(mountsForCopy(mounts, "share"), mounts);
  assert.deepEqual(mountsForCopy(mounts, "readonly"), {
    "/m": { ...mounts["/m"], readonly: true },
    "/o": { ...mounts["/o"], readonly: true },
  });
});
