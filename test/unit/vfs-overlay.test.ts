import { test } from "node:test";
import assert from "node:assert/strict";
import {
  chmod,
  chown,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Errno,
  MemoryProvider,
  OverlayProvider,
  openHostOverlay,
  quotaOfSize,
} from "../../src/vfs/index.js";
import { kernelFor, posixSuite, rejectsErrno } from "./vfs-posix-suite.js";

posixSuite("overlay (memory over memory)", async () => ({
  provider: new OverlayProvider(new MemoryProvider(), new MemoryProvider()),
}));

posixSuite("overlay (host dir, empty lower)", async () => {
  const base = await mkdtemp(join(tmpdir(), "wheellock-vfs-ov-"));
  await mkdir(join(base, "lower"));
  const { provider } = await openHostOverlay({
    hostPath: join(base, "lower"),
    upperParentDir: base,
    quota: quotaOfSize(1 << 30),
  });
  return { provider, cleanup: () => rm(base, { recursive: true, force: true }) };
});

/** A lower tree with content, served through an overlay; checks the lower is never changed. */
async function withLowerTree(
  body: (
    k: Awaited<ReturnType<typeof kernelFor>>,
    paths: { lower: string; base: string },
  ) => Promise<void>,
): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), "wheellock-vfs-ov-"));
  const lower = join(base, "lower");
  await mkdir(join(lower, "src", "deep"), { recursive: true });
  await writeFile(join(lower, "README"), "lower readme");
  await writeFile(join(lower, "src", "main.c"), "int main;");
  await writeFile(join(lower, "src", "deep", "x"), "x");
  await symlink("src/main.c", join(lower, "link"));
  const before = await snapshot(lower);
  const { provider, upperDir } = await openHostOverlay({
    hostPath: lower,
    upperParentDir: base,
    quota: quotaOfSize(1 << 30),
  });
  try {
    await body(await kernelFor(provider), { lower, base });
    assert.deepEqual(await snapshot(lower), before, "the lower directory is never modified");
  } finally {
    await provider.close();
    await assert.rejects(stat(upperDir), "the upper layer is removed on close");
    await rm(base, { recursive: true, force: true });
  }
}

async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const p = join(e.parentPath ?? e.path, e.name);
    out.push(e.isFile() ? `${p}=${await readFile(p, "utf8")}:${(await stat(p)).mode}` : p);
  }
  return out.sort();
}

test("overlay: lower content is visible, writes copy up and stay in the upper layer", async () => {
  await withLowerTree(async (k) => {
    const readme = await k.lookup(1n, "README");
    const rfh = await k.open(readme.nodeid, 0);
    assert.equal((await k.read(rfh, 0, 100)).toString(), "lower readme");
    await k.release(rfh);
    const wfh = await k.open(readme.nodeid, 2);
    await k.write(wfh, 0, Buffer.from("UPPER"));
    assert.equal((await k.read(wfh, 0, 100)).toString(), "UPPER readme");
    await k.release(wfh);
    const src = (await k.lookup(1n, "src")).nodeid;
    const deep = (await k.lookup(src, "deep")).nodeid;
    const f = await k.create(deep, "new");
    await k.release(f.fh);
    assert.deepEqual(await k.readdir(deep), ["new", "x"]);
    await k.setattr((await k.lookup(src, "main.c")).nodeid, { mode: 0o600 });
    assert.equal(await k.readlink((await k.lookup(1n, "link")).nodeid), "src/main.c");
  });
});

test("overlay: removing lower entries hides them; recreating a removed directory starts empty", async () => {
  await withLowerTree(async (k) => {
    await k.unlink(1n, "README");
    await rejectsErrno(k.lookup(1n, "README"), Errno.ENOENT);
    const src = (await k.lookup(1n, "src")).nodeid;
    await rejectsErrno(k.rmdir(1n, "src"), Errno.ENOTEMPTY);
    const deep = (await k.lookup(src, "deep")).nodeid;
    await k.unlink(deep, "x");
    await k.rmdir(src, "deep");
    await k.unlink(src, "main.c");
    await k.rmdir(1n, "src");
    assert.deepEqual(await k.readdir(1n), ["link"]);
    const again = await k.mkdir(1n, "src");
    assert.deepEqual(await k.readdir(again), [], "lower contents do not come back");
    const f = await k.create(1n, "README");
    await k.release(f.fh);
    assert.equal((await k.lookup(1n, "README")).attr.size, 0);
  });
});

test("overlay: renaming a lower directory moves its whole visible tree", async () => {
  await withLowerTree(async (k) => {
    await k.rename(1n, "src", 1n, "moved");
    await rejectsErrno(k.lookup(1n, "src"), Errno.ENOENT);
    const moved = (await k.lookup(1n, "moved")).nodeid;
    assert.deepEqual(await k.readdir(moved), ["deep", "main.c"]);
    const deep = (await k.lookup(moved, "deep")).nodeid;
    const x = await k.open((await k.lookup(deep, "x")).nodeid, 0);
    assert.equal((await k.read(x, 0, 10)).toString(), "x");
    await k.release(x);
  });
});

test("overlay: memory lower and upper work without a host", async () => {
  const k = await kernelFor(new OverlayProvider(new MemoryProvider(), new MemoryProvider()));
  const d = await k.mkdir(1n, "d");
  await k.release((await k.create(d, "f")).fh);
  assert.deepEqual(await k.readdir(d), ["f"]);
});

test("overlay: the root shows the overlaid directory's mode, owner and times (finding 8)", async () => {
  const base = await mkdtemp(join(tmpdir(), "wheellock-vfs-ov-"));
  const lower = join(base, "lower");
  await mkdir(lower);
  await chmod(lower, 0o751);
  await utimes(lower, new Date("2001-02-03T04:05:06Z"), new Date("2001-02-03T04:05:06Z"));
  const asRoot = process.getuid?.() === 0;
  // As root the test can give the directory to another user, as a host user owning it would.
  if (asRoot) await chown(lower, 1000, 1001);
  const { provider } = await openHostOverlay({
    hostPath: lower,
    upperParentDir: base,
    quota: quotaOfSize(1 << 30),
  });
  try {
    const k = await kernelFor(provider);
    const root = await k.getattr(1n);
    assert.equal(root.mode & 0o7777, 0o751, "not the private upper directory's 0700");
    assert.deepEqual([root.uid, root.gid], asRoot ? [1000, 1001] : [0, 0]);
    assert.equal(root.mtimeSec, Date.parse("2001-02-03T04:05:06Z") / 1000);
    // chmod/chown of the root change what the guest sees, never the host directories.
    await k.setattr(1n, { mode: 0o700, uid: 1234 });
    const changed = await k.getattr(1n);
    assert.deepEqual([changed.mode & 0o7777, changed.uid], [0o700, 1234]);
    assert.equal((await stat(lower)).mode & 0o7777, 0o751);
    // A new entry is a change of the root: its mtime moves on.
    const before = Math.floor(Date.now() / 1000) - 1;
    await k.release((await k.create(1n, "new")).fh);
    assert.ok((await k.getattr(1n)).mtimeSec >= before);
  } finally {
    await provider.close();
    await rm(base, { recursive: true, force: true });
  }
});

test("overlay: attack: names the guest creates and renames away leave no whiteouts behind", async () => {
  const provider = new OverlayProvider(new MemoryProvider(), new MemoryProvider());
  const k = await kernelFor(provider);
  for (let i = 0; i < 200; i++) {
    await k.release((await k.create(1n, `f${i}`)).fh);
    await k.rename(1n, `f${i}`, 1n, "last");
    const d = await k.mkdir(1n, `d${i}`);
    await k.rename(1n, `d${i}`, 1n, `e${i}`);
    await k.rmdir(1n, `e${i}`);
    void d;
  }
  // Each name would otherwise be a path kept in host memory for the sandbox's lifetime.
  const masks = Reflect.get(provider, "masks") as object;
  assert.equal((Reflect.get(masks, "whiteouts") as Set<string>).size, 0);
  assert.equal((Reflect.get(masks, "opaque") as Set<string>).size, 0);
});

test("overlay: upper nodes belong to the guest user who made them; copy-up and chown keep owners", async () => {
  await withLowerTree(async (k, { lower }) => {
    const asRoot = process.getuid?.() === 0;
    if (asRoot) await chown(join(lower, "README"), 1000, 1000);
    k.uid = 1000;
    k.gid = 1000;
    const f = await k.create(1n, "mine");
    assert.deepEqual(
      [(await k.getattr(f.nodeid, f.fh)).uid, (await k.getattr(f.nodeid)).gid],
      [1000, 1000],
    );
    await k.release(f.fh);
    const d = await k.mkdir(1n, "dir");
    assert.equal((await k.getattr(d)).uid, 1000);
    // A write copies README up: it stays the lower file's owner's, not the host user's.
    const readme = await k.lookup(1n, "README");
    const fh = await k.open(readme.nodeid, 2);
    await k.write(fh, 0, Buffer.from("x"));
    await k.release(fh);
    assert.equal((await k.getattr(readme.nodeid)).uid, asRoot ? 1000 : 0);
    k.uid = 0;
    await k.setattr(f.nodeid, { uid: 4242 });
    assert.equal((await k.getattr(f.nodeid)).uid, 4242);
    assert.equal((await stat(join(lower, "README"))).uid, asRoot ? 1000 : process.getuid?.());
  });
});
