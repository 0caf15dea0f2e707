// Copies of a sandbox (fork, checkpoint) and its mounts: a copy's FUSE server answers for the
// node ids the copied guest kernel holds, and read-write host directories become what
// `forkMounts` says, never silently shared.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mountsForCopy, type MountConfig } from "../../src/config/index.js";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  BlobFile,
  FuseServer,
  MemoryProvider,
  RouterProvider,
  routedFileId,
  withRenamedFileIds,
} from "../../src/vfs/index.js";
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

test("a copy with restored memory contents keeps the guest's node ids on the same files", async () => {
  const dir = await mkdtemp(join(tmpdir(), "wl-fork-ids-"));
  try {
    const memory = new MemoryProvider();
    const original = new FuseServer({ provider: new RouterProvider({ "/m": memory }) });
    const k = new FakeKernel(original);
    await k.init();
    const m = (await k.lookup(1n, "m")).nodeid;
    const created = await k.create(m, "file");
    await k.write(created.fh, 0, Buffer.from("hello"));
    await k.release(created.fh);
    const hard = await k.link(created.nodeid, m, "hard");
    assert.equal(hard, created.nodeid);
    const session = original.exportSession()!;
    const blob = await BlobFile.create(join(dir, "data"));
    const image = await memory.exportContents(blob);
    await blob.close();

    const copyMemory = new MemoryProvider();
    const source = await BlobFile.openRead(join(dir, "data"));
    const renamed = await copyMemory.importContents(image, source);
    await source.close();
    assert.ok(renamed.size > 0, "the copy's files have ids of their own");
    const routed = new Map(
      [...renamed].map(([from, to]) => [routedFileId("/m", from), routedFileId("/m", to)]),
    );
    const copy = new FuseServer({ provider: new RouterProvider({ "/m": copyMemory }) });
    copy.resumeSession(withRenamedFileIds(session, routed));
    const ck = new FakeKernel(copy);
    // Both names still lead to the node the copied kernel holds (one inode, two links).
    assert.equal((await ck.lookup(m, "file")).nodeid, created.nodeid);
    assert.equal((await ck.lookup(m, "hard")).nodeid, created.nodeid);
    const fh = await ck.open(created.nodeid);
    assert.equal((await ck.read(fh, 0, 5)).toString(), "hello");
    await ck.release(fh);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
