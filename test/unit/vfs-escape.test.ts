/**
 * The escape suite: the guest kernel is the adversary. Every request here is crafted raw and
 * sent straight to the server over a host directory; none may read, write, create or reveal
 * anything outside the served root.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Errno, HostDirProvider } from "../../src/vfs/index.js";
import { Opcode } from "../../src/vfs/fuse-constants.js";
import type { FakeKernel } from "./vfs-fake-kernel.js";
import { kernelFor, rejectsErrno } from "./vfs-posix-suite.js";

const ROOT = 1n;

interface World {
  readonly k: FakeKernel;
  readonly root: string;
  readonly outside: string;
}

/** base/outside/secret (must stay untouched) and base/root (served). */
function escapeTest(name: string, body: (w: World) => Promise<void>): void {
  test(`escape: ${name}`, async () => {
    const base = await mkdtemp(join(tmpdir(), "wheellock-vfs-esc-"));
    const outside = join(base, "outside");
    const root = join(base, "root");
    await mkdir(outside);
    await mkdir(root);
    await writeFile(join(outside, "secret"), "SECRET", { mode: 0o600 });
    const provider = await HostDirProvider.open(root);
    try {
      await body({ k: await kernelFor(provider), root, outside });
      assert.equal(await readFile(join(outside, "secret"), "utf8"), "SECRET");
      assert.equal((await stat(join(outside, "secret"))).mode & 0o7777, 0o600);
      assert.deepEqual(await readdir(outside), ["secret"], "nothing was created outside the root");
    } finally {
      await provider.close();
      await rm(base, { recursive: true, force: true });
    }
  });
}

escapeTest("names that are not one plain component are refused", async ({ k }) => {
  for (const name of ["..", ".", "a/b", "../outside", "/etc", ""]) {
    await rejectsErrno(k.lookup(ROOT, name), Errno.EINVAL);
    await rejectsErrno(k.create(ROOT, name), Errno.EINVAL);
    await rejectsErrno(k.mkdir(ROOT, name), Errno.EINVAL);
  }
  await rejectsErrno(k.lookup(ROOT, "x".repeat(256)), Errno.ENAMETOOLONG);
  await rejectsErrno(k.rename(ROOT, "..", ROOT, "x"), Errno.EINVAL);
  await rejectsErrno(k.symlink(ROOT, "../escape", "x"), Errno.EINVAL);
});

escapeTest("a name with an embedded NUL only ever means its first part", async ({ k, root }) => {
  // The kernel NUL-terminates names; a crafted "a\0/../x" must not reach the host as a path.
  const f = await k.create(ROOT, "a\0/../../outside/secret");
  await k.release(f.fh);
  assert.deepEqual(await readdir(root), ["a"]);
});

escapeTest("names that are not UTF-8 are refused", async ({ k }) => {
  const body = Buffer.from([0x2e, 0xff, 0x2e, 0]);
  const reply = await k.raw(k.request(Opcode.LOOKUP, ROOT, body));
  assert.equal(reply?.error, -Errno.EINVAL);
});

escapeTest("a symlink the guest creates pointing out is never followed", async ({ k, outside }) => {
  for (const target of ["../outside/secret", join(outside, "secret")]) {
    const name = target.startsWith("/") ? "abs" : "rel";
    const link = await k.symlink(ROOT, name, target);
    const attr = (await k.lookup(ROOT, name)).attr;
    assert.equal(attr.mode & 0o170000, 0o120000, "LOOKUP reports the link, not its target");
    assert.equal(attr.size, Buffer.byteLength(target));
    await rejectsErrno(k.open(link, 0), Errno.ELOOP);
    await rejectsErrno(k.open(link, 2 | 0o1000), Errno.ELOOP);
    await rejectsErrno(k.setattr(link, { mode: 0o777 }), Errno.EOPNOTSUPP);
    await rejectsErrno(k.setattr(link, { size: 0 }), Errno.EOPNOTSUPP);
    await rejectsErrno(k.lookup(link, "x"), Errno.ENOTDIR);
    await rejectsErrno(k.create(link, "x"), Errno.ENOTDIR);
  }
});

escapeTest("times set on a symlink land on the link, never on its target", async (w) => {
  const { k, root, outside } = w;
  const secret = join(outside, "secret");
  const before = (await lstat(secret)).mtimeMs;
  await symlink(secret, join(root, "ptr"));
  const ptr = (await k.lookup(ROOT, "ptr")).nodeid;
  // Both times (futimens), one time, and an owner check: each path of SETATTR.
  const both = await k.setattr(ptr, { atimeSec: 1_000_000, mtimeSec: 2_000_000 });
  assert.equal(both.mode & 0o170000, 0o120000);
  await k.setattr(ptr, { mtimeSec: 3_000_000 });
  await k.setattr(ptr, { uid: 0 });
  assert.equal((await lstat(join(root, "ptr"))).mtimeMs, 3_000_000_000);
  assert.equal((await lstat(secret)).mtimeMs, before, "the target outside is untouched");
});

escapeTest(
  "a host symlink to an outside directory cannot be walked through",
  async ({ k, root, outside }) => {
    await symlink(outside, join(root, "door"));
    const door = (await k.lookup(ROOT, "door")).nodeid;
    await rejectsErrno(k.lookup(door, "secret"), Errno.ENOTDIR);
    await rejectsErrno(k.create(door, "planted"), Errno.ENOTDIR);
    await rejectsErrno(k.mkdir(door, "planted"), Errno.ENOTDIR);
    await rejectsErrno(k.unlink(door, "secret"), Errno.ENOTDIR);
    await rejectsErrno(k.readdir(door), Errno.ENOTDIR);
    const f = await k.create(ROOT, "mine");
    await k.release(f.fh);
    await rejectsErrno(k.rename(ROOT, "mine", door, "mine"), Errno.ENOTDIR);
    await rejectsErrno(k.link(f.nodeid, door, "hard"), Errno.ENOTDIR);
    await rejectsErrno(k.symlink(door, "s", "x"), Errno.ENOTDIR);
  },
);

escapeTest(
  "a directory swapped for a symlink after lookup does not redirect later operations",
  async ({ k, root, outside }) => {
    await mkdir(join(root, "work"));
    const work = await k.mkdir(ROOT, "inner");
    const workNode = (await k.lookup(ROOT, "work")).nodeid;
    // The race of CVE-2018-15664, made deterministic: the kernel holds a node for "work",
    // then something swaps the directory for a symlink to the outside.
    await rename(join(root, "work"), join(root, "work-moved"));
    await symlink(outside, join(root, "work"));
    await rejectsErrno(k.create(workNode, "secret"), Errno.ENOTDIR);
    await rejectsErrno(k.lookup(workNode, "secret"), Errno.ENOTDIR);
    await rejectsErrno(k.unlink(workNode, "secret"), Errno.ENOTDIR);
    await rejectsErrno(k.setattr(workNode, { mode: 0o777 }), Errno.EOPNOTSUPP);
    assert.ok(work > 1n);
  },
);

escapeTest(
  "a hard link of an escaping symlink links the symlink, never its target",
  async ({ k, root, outside }) => {
    await symlink(join(outside, "secret"), join(root, "pointer"));
    const pointer = (await k.lookup(ROOT, "pointer")).nodeid;
    await k.link(pointer, ROOT, "hard");
    assert.ok((await lstat(join(root, "hard"))).isSymbolicLink());
    assert.equal((await stat(join(outside, "secret"))).nlink, 1);
    await rejectsErrno(k.open((await k.lookup(ROOT, "hard")).nodeid, 0), Errno.ELOOP);
  },
);

escapeTest(
  "rename cannot move anything out of the root or into a node that does not exist",
  async ({ k }) => {
    const f = await k.create(ROOT, "f");
    await k.release(f.fh);
    await rejectsErrno(k.rename(ROOT, "f", 9999n, "f"), Errno.ENOENT);
    await rejectsErrno(k.rename(ROOT, "f", ROOT, "../f"), Errno.EINVAL);
    const d = await k.mkdir(ROOT, "d");
    await rejectsErrno(k.rename(ROOT, "d", d, "inside-itself"), Errno.EINVAL);
  },
);

escapeTest("node ids and handles the server never issued are refused", async ({ k }) => {
  await rejectsErrno(k.getattr(424242n), Errno.ENOENT);
  await rejectsErrno(k.read(77n, 0, 10), Errno.EBADF);
  await rejectsErrno(k.write(77n, 0, Buffer.from("x")), Errno.EBADF);
  const d = await k.mkdir(ROOT, "d");
  const dirFh = (await k.call(Opcode.OPENDIR, d, Buffer.alloc(8))).readBigUInt64LE(0);
  await rejectsErrno(k.read(dirFh, 0, 10), Errno.EBADF);
});

escapeTest(
  "device nodes and FIFOs are never created or opened on the host",
  async ({ k, root }) => {
    await rejectsErrno(k.mknod(ROOT, "tty", 0o020666), Errno.EPERM);
    await rejectsErrno(k.mknod(ROOT, "disk", 0o060666), Errno.EPERM);
    await rejectsErrno(k.mknod(ROOT, "pipe", 0o010644), Errno.EPERM);
    execFileSync("mkfifo", [join(root, "hostpipe")]);
    const pipe = (await k.lookup(ROOT, "hostpipe")).nodeid;
    // Without O_NONBLOCK this open would hang a libuv thread forever.
    await rejectsErrno(k.open(pipe, 0), Errno.EACCES);
    await rejectsErrno(k.open(pipe, 1), Errno.ENXIO);
  },
);

escapeTest("set-id bits never reach the host", async ({ k, root }) => {
  const f = await k.create(ROOT, "suid", 0o4755);
  await k.release(f.fh);
  assert.equal((await stat(join(root, "suid"))).mode & 0o7777, 0o755);
  await k.setattr(f.nodeid, { mode: 0o6777 });
  assert.equal((await stat(join(root, "suid"))).mode & 0o7777, 0o777);
});
