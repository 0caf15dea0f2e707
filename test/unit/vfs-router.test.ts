import { test } from "node:test";
import assert from "node:assert/strict";
import { Errno, MemoryProvider, ReadOnlyProvider, RouterProvider } from "../../src/vfs/index.js";
import { kernelFor, posixSuite, rejectsErrno } from "./vfs-posix-suite.js";

posixSuite("router (one provider at /)", async () => ({
  provider: new RouterProvider({ "/": new MemoryProvider() }),
}));

test("router: providers at several paths, synthetic ancestors, mount points listed", async () => {
  const code = new MemoryProvider();
  const creds = new ReadOnlyProvider(new MemoryProvider());
  const k = await kernelFor(new RouterProvider({ "/workspace/code": code, "/secrets/aws": creds }));
  assert.deepEqual(await k.readdir(1n), ["secrets", "workspace"]);
  const ws = await k.lookup(1n, "workspace");
  assert.equal(ws.attr.mode & 0o170000, 0o040000);
  await rejectsErrno(k.create(ws.nodeid, "stray"), Errno.EROFS);
  await rejectsErrno(k.lookup(1n, "elsewhere"), Errno.ENOENT);
  const codeDir = (await k.lookup(ws.nodeid, "code")).nodeid;
  const f = await k.create(codeDir, "main.ts");
  await k.write(f.fh, 0, Buffer.from("export {}"));
  await k.release(f.fh);
  assert.equal(
    (await code.stat("/main.ts")).sizeBytes,
    9,
    "the provider sees paths relative to its mount",
  );
  const aws = (await k.lookup((await k.lookup(1n, "secrets")).nodeid, "aws")).nodeid;
  await rejectsErrno(k.create(aws, "x"), Errno.EROFS);
  await rejectsErrno(k.rename(codeDir, "main.ts", aws, "main.ts"), Errno.EXDEV);
  await rejectsErrno(k.rmdir(ws.nodeid, "code"), Errno.EBUSY);
});

test("router: the longest mount wins and shadows the outer provider's entry", async () => {
  const outer = new MemoryProvider();
  const inner = new MemoryProvider();
  await outer.mkdir("/data", 0o755, { uid: 0, gid: 0 });
  await (
    await outer.create(
      "/data/outer-file",
      0o644,
      { read: true, write: true, append: false, truncate: false },
      { uid: 0, gid: 0 },
    )
  ).close();
  const k = await kernelFor(new RouterProvider({ "/": outer, "/data": inner }));
  const data = (await k.lookup(1n, "data")).nodeid;
  assert.deepEqual(await k.readdir(data), []);
  await k.release((await k.create(data, "inner-file")).fh);
  assert.deepEqual(
    (await inner.readdir("/")).map((e) => e.name),
    ["inner-file"],
  );
  assert.throws(
    () => new RouterProvider({ "/a/": outer }),
    (err: unknown) => err instanceof Error,
  );
});
