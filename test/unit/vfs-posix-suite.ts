/**
 * POSIX behaviour every read-write provider must show, driven through raw FUSE requests.
 * Each provider's test file calls `posixSuite` with a factory.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Errno, FuseServer, type VfsProvider } from "../../src/vfs/index.js";
import { FakeKernel, FuseErrno } from "./vfs-fake-kernel.js";

const ROOT = 1n;
const S_IFLNK = 0o120000;

export async function rejectsErrno(p: Promise<unknown>, errno: number): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof FuseErrno && err.errno === errno);
}

export async function kernelFor(provider: VfsProvider): Promise<FakeKernel> {
  const kernel = new FakeKernel(new FuseServer({ provider }));
  await kernel.init();
  return kernel;
}

export function posixSuite(
  label: string,
  make: () => Promise<{ provider: VfsProvider; cleanup?: () => Promise<void> }>,
): void {
  const withKernel = (name: string, body: (k: FakeKernel) => Promise<void>): void => {
    test(`${label}: ${name}`, async () => {
      const { provider, cleanup } = await make();
      try {
        await body(await kernelFor(provider));
      } finally {
        await provider.close?.();
        await cleanup?.();
      }
    });
  };

  withKernel("create, write, read back, size and offsets", async (k) => {
    const { nodeid, fh } = await k.create(ROOT, "a.txt");
    assert.equal(await k.write(fh, 0, Buffer.from("hello world")), 11);
    assert.equal(await k.write(fh, 6, Buffer.from("WORLD")), 5);
    assert.equal((await k.read(fh, 0, 100)).toString(), "hello WORLD");
    assert.equal((await k.read(fh, 6, 3)).toString(), "WOR");
    assert.equal((await k.read(fh, 50, 10)).length, 0);
    assert.equal((await k.getattr(nodeid)).size, 11);
    await k.release(fh);
    assert.equal((await k.lookup(ROOT, "a.txt")).nodeid, nodeid);
  });

  withKernel("a write of 1 MiB in one request", async (k) => {
    const { fh } = await k.create(ROOT, "big");
    const data = Buffer.alloc(1 << 20, 7);
    assert.equal(await k.write(fh, 0, data), data.length);
    const back = await k.read(fh, 0, 1 << 20);
    assert.equal(back.length, data.length);
    assert.ok(back.equals(data));
    await k.release(fh);
  });

  withKernel("create of an existing name is EEXIST", async (k) => {
    await k.release((await k.create(ROOT, "x")).fh);
    await rejectsErrno(k.create(ROOT, "x"), Errno.EEXIST);
  });

  withKernel("mkdir, readdir (many entries, small buffers), rmdir", async (k) => {
    const d = await k.mkdir(ROOT, "dir");
    const names: string[] = [];
    for (let i = 0; i < 60; i++) {
      names.push(`file-${i}`);
      await k.release((await k.create(d, `file-${i}`)).fh);
    }
    assert.deepEqual(await k.readdir(d, 200), names.sort());
    await rejectsErrno(k.rmdir(ROOT, "dir"), Errno.ENOTEMPTY);
    for (const n of names) await k.unlink(d, n);
    await k.rmdir(ROOT, "dir");
    await rejectsErrno(k.lookup(ROOT, "dir"), Errno.ENOENT);
  });

  withKernel("rename a file over an existing one, and a directory with its contents", async (k) => {
    const a = await k.create(ROOT, "a");
    await k.write(a.fh, 0, Buffer.from("A"));
    await k.release(a.fh);
    await k.release((await k.create(ROOT, "b")).fh);
    await k.rename(ROOT, "a", ROOT, "b");
    await rejectsErrno(k.lookup(ROOT, "a"), Errno.ENOENT);
    const b = await k.lookup(ROOT, "b");
    assert.equal(b.attr.size, 1);
    const d = await k.mkdir(ROOT, "d");
    const inner = await k.create(d, "inner");
    await k.release(inner.fh);
    await k.rename(ROOT, "d", ROOT, "e");
    const e = await k.lookup(ROOT, "e");
    assert.equal(e.nodeid, d, "the directory keeps its node id");
    assert.equal((await k.lookup(e.nodeid, "inner")).nodeid, inner.nodeid);
    assert.deepEqual(await k.readdir(ROOT), ["b", "e"]);
    await rejectsErrno(k.rename(ROOT, "b", ROOT, "e", 1), Errno.EEXIST);
  });

  withKernel("an unlinked open file stays readable through its handle", async (k) => {
    const f = await k.create(ROOT, "tmp");
    await k.write(f.fh, 0, Buffer.from("still here"));
    await k.unlink(ROOT, "tmp");
    await rejectsErrno(k.lookup(ROOT, "tmp"), Errno.ENOENT);
    assert.equal((await k.read(f.fh, 0, 100)).toString(), "still here");
    assert.equal((await k.getattr(f.nodeid, f.fh)).size, 10);
    assert.equal((await k.getattr(f.nodeid)).size, 10, "fstat comes without a handle");
    await k.release(f.fh);
  });

  withKernel("hard links share content and count links", async (k) => {
    const f = await k.create(ROOT, "one");
    await k.write(f.fh, 0, Buffer.from("shared"));
    await k.link(f.nodeid, ROOT, "two");
    const two = await k.lookup(ROOT, "two");
    assert.equal(two.attr.nlink, 2);
    assert.equal(two.nodeid, f.nodeid, "both names are one inode for the kernel");
    const fh2 = await k.open(two.nodeid, 2);
    await k.write(fh2, 0, Buffer.from("SH"));
    assert.equal((await k.read(f.fh, 0, 10)).toString(), "SHared");
    await k.release(fh2);
    await k.release(f.fh);
    // Removing the name the node was first known by leaves it reachable through the other.
    const d = await k.mkdir(ROOT, "sub");
    await k.link(f.nodeid, d, "three");
    await k.unlink(ROOT, "one");
    await k.unlink(ROOT, "two");
    assert.equal((await k.getattr(f.nodeid)).nlink, 1);
    assert.equal((await k.setattr(f.nodeid, { mode: 0o600 })).mode & 0o777, 0o600);
    assert.equal((await k.lookup(d, "three")).attr.mode & 0o777, 0o600);
  });

  withKernel("symlinks are stored verbatim and never followed by the server", async (k) => {
    const l = await k.symlink(ROOT, "link", "../../some/where");
    assert.equal(await k.readlink(l), "../../some/where");
    const attr = (await k.lookup(ROOT, "link")).attr;
    assert.equal(attr.mode & 0o170000, S_IFLNK);
  });

  withKernel("chmod, truncate (grow and shrink), utimes", async (k) => {
    const f = await k.create(ROOT, "f");
    await k.write(f.fh, 0, Buffer.from("abcdef"));
    assert.equal((await k.setattr(f.nodeid, { mode: 0o600 })).mode & 0o7777, 0o600);
    assert.equal((await k.setattr(f.nodeid, { size: 3 })).size, 3);
    assert.equal((await k.read(f.fh, 0, 10)).toString(), "abc");
    assert.equal((await k.setattr(f.nodeid, { size: 5, fh: f.fh })).size, 5);
    assert.deepEqual([...(await k.read(f.fh, 0, 10))], [97, 98, 99, 0, 0]);
    assert.equal((await k.setattr(f.nodeid, { mtimeSec: 1000 })).mtimeSec, 1000);
    await k.release(f.fh);
  });

  withKernel("append mode writes at the end", async (k) => {
    const f = await k.create(ROOT, "log");
    await k.write(f.fh, 0, Buffer.from("one\n"));
    await k.release(f.fh);
    const fh = await k.open(f.nodeid, 1 | 0o2000);
    await k.write(fh, 0, Buffer.from("two\n"));
    await k.release(fh);
    const r = await k.open(f.nodeid, 0);
    assert.equal((await k.read(r, 0, 100)).toString(), "one\ntwo\n");
    await k.release(r);
  });

  withKernel("opening with O_TRUNC empties the file", async (k) => {
    const f = await k.create(ROOT, "t");
    await k.write(f.fh, 0, Buffer.from("content"));
    await k.release(f.fh);
    await k.release(await k.open(f.nodeid, 1 | 0o1000));
    assert.equal((await k.getattr(f.nodeid)).size, 0);
  });

  withKernel("errors: ENOENT, ENOTDIR, EISDIR", async (k) => {
    await rejectsErrno(k.lookup(ROOT, "nope"), Errno.ENOENT);
    const f = await k.create(ROOT, "file");
    await k.release(f.fh);
    await rejectsErrno(k.lookup(f.nodeid, "x"), Errno.ENOTDIR);
    const d = await k.mkdir(ROOT, "d");
    await rejectsErrno(k.open(d, 0), Errno.EISDIR);
    await rejectsErrno(k.unlink(ROOT, "d"), Errno.EISDIR);
    await rejectsErrno(k.rmdir(ROOT, "file"), Errno.ENOTDIR);
  });
}
