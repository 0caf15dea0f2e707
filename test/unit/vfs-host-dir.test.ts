import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HostDirProvider, ReadOnlyProvider, Errno } from "../../src/vfs/index.js";
import { posixSuite, kernelFor, rejectsErrno } from "./vfs-posix-suite.js";

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), "wheellock-vfs-"));
}

posixSuite("host dir", async () => {
  const dir = await tempDir();
  return {
    provider: await HostDirProvider.open(dir),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

// The same with the sync gate shut after the first call: every host call through the thread pool.
posixSuite("host dir, thread pool only", async () => {
  const dir = await tempDir();
  return {
    provider: await HostDirProvider.open(dir, { syncGate: { slowCalls: 0 } }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

test("host dir: guest writes land on the host and host files are visible to the guest", async () => {
  const dir = await tempDir();
  try {
    await writeFile(join(dir, "from-host"), "host data");
    const k = await kernelFor(await HostDirProvider.open(dir));
    const node = await k.lookup(1n, "from-host");
    const fh = await k.open(node.nodeid, 0);
    assert.equal((await k.read(fh, 0, 100)).toString(), "host data");
    const f = await k.create(1n, "from-guest", 0o640);
    await k.write(f.fh, 0, Buffer.from("guest data"));
    await k.release(f.fh);
    assert.equal(await readFile(join(dir, "from-guest"), "utf8"), "guest data");
    assert.equal((await stat(join(dir, "from-guest"))).mode & 0o777, 0o640);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("host dir: host-user files appear owned by the configured guest owner", async () => {
  const dir = await tempDir();
  try {
    await writeFile(join(dir, "f"), "");
    const k = await kernelFor(
      await HostDirProvider.open(dir, { guestOwner: { uid: 1000, gid: 1000 } }),
    );
    const attr = (await k.lookup(1n, "f")).attr;
    assert.deepEqual([attr.uid, attr.gid], [1000, 1000]);
    await rejectsErrno(k.setattr((await k.lookup(1n, "f")).nodeid, { uid: 0 }), Errno.EPERM);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("read-only wrapper: reads work, every change is EROFS and the host is untouched", async () => {
  const dir = await tempDir();
  try {
    await writeFile(join(dir, "keep"), "original");
    const k = await kernelFor(new ReadOnlyProvider(await HostDirProvider.open(dir)));
    const node = await k.lookup(1n, "keep");
    const fh = await k.open(node.nodeid, 0);
    assert.equal((await k.read(fh, 0, 100)).toString(), "original");
    await rejectsErrno(k.write(fh, 0, Buffer.from("x")), Errno.EROFS);
    await rejectsErrno(k.open(node.nodeid, 2), Errno.EROFS);
    await rejectsErrno(k.open(node.nodeid, 0o1000), Errno.EROFS);
    await rejectsErrno(k.create(1n, "new"), Errno.EROFS);
    await rejectsErrno(k.mkdir(1n, "d"), Errno.EROFS);
    await rejectsErrno(k.unlink(1n, "keep"), Errno.EROFS);
    await rejectsErrno(k.rename(1n, "keep", 1n, "moved"), Errno.EROFS);
    await rejectsErrno(k.setattr(node.nodeid, { mode: 0o777 }), Errno.EROFS);
    await rejectsErrno(k.setattr(node.nodeid, { size: 0 }), Errno.EROFS);
    await rejectsErrno(k.symlink(1n, "l", "keep"), Errno.EROFS);
    await rejectsErrno(k.link(node.nodeid, 1n, "hard"), Errno.EROFS);
    assert.equal(await readFile(join(dir, "keep"), "utf8"), "original");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
