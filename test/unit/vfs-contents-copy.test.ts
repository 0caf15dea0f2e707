// The contents of memory mounts and overlays carried to a copy of a sandbox (fork,
// checkpoint): exported to plain data plus a blob of bytes, imported into a fresh provider,
// the copy showing the same tree (files, dirs, symlinks, fifos, modes, owners, times, hard
// links, whiteouts) and writing independently of the original.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  BlobFile,
  Errno,
  MemoryProvider,
  openHostOverlay,
  quotaOfSize,
  type CopyableContents,
  type MountImage,
  type VfsProvider,
} from "../../src/vfs/index.js";

async function rejectsErrno(p: Promise<unknown>, errno: number): Promise<void> {
  await assert.rejects(p, (err: unknown) => (err as { errno?: number }).errno === errno);
}

const RW = { read: true, write: true, append: false, truncate: false };
const RO = { read: true, write: false, append: false, truncate: false };
const ALICE = { uid: 1000, gid: 1001 };
const ROOT = { uid: 0, gid: 0 };
const T1 = 1_600_000_000_000;
const T2 = 1_650_000_000_000;

async function writeAll(p: VfsProvider, path: string, data: Buffer, mode = 0o644, owner = ROOT) {
  const h = await p.create(path, mode, RW, owner);
  await h.write(0, data);
  await h.close();
}

async function readAll(p: VfsProvider, path: string): Promise<Buffer> {
  const h = await p.open(path, RO);
  try {
    return await h.read(0, (await h.stat()).sizeBytes);
  } finally {
    await h.close();
  }
}

/** Everything the guest sees of a tree (no ids, no ctime: those are the copy's own). */
async function view(p: VfsProvider, atime = true, dir = "/"): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const walk = async (d: string): Promise<void> => {
    for (const { name } of (await p.readdir(d)).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = d === "/" ? `/${name}` : `${d}/${name}`;
      const s = await p.stat(path);
      const content =
        s.type === "file"
          ? (await readAll(p, path)).toString("base64").slice(0, 64) + `:${s.sizeBytes}`
          : s.type === "symlink"
            ? await p.readlink(path)
            : undefined;
      // A host directory keeps times in its own precision, and reading changes its atime.
      const times =
        s.type === "symlink"
          ? {}
          : { mtimeMs: Math.floor(s.mtimeMs), ...(atime ? { atimeMs: s.atimeMs } : {}) };
      out[path] = {
        type: s.type,
        mode: s.mode,
        uid: s.uid,
        gid: s.gid,
        nlink: s.nlink,
        content,
        ...times,
      };
      if (s.type === "dir") await walk(path);
    }
  };
  const root = await p.stat(dir);
  out["/"] = { mode: root.mode, uid: root.uid, gid: root.gid, mtimeMs: Math.floor(root.mtimeMs) };
  await walk(dir);
  return out;
}

async function withTmp(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "wl-contents-"));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Exports `from` to a blob in `dir`, imports into `to`; the image goes through JSON. */
async function copyContents(
  from: CopyableContents,
  to: CopyableContents,
  dir: string,
): Promise<{ renamed: Map<string, string>; image: MountImage; dataPath: string }> {
  const dataPath = join(dir, `data-${Math.random().toString(36).slice(2)}`);
  const sink = await BlobFile.create(dataPath);
  const image = JSON.parse(JSON.stringify(await from.exportContents(sink))) as MountImage;
  await sink.close();
  const source = await BlobFile.openRead(dataPath);
  try {
    return { renamed: await to.importContents(image, source), image, dataPath };
  } finally {
    await source.close();
  }
}

/** A tree with one of everything, in any writable provider. */
async function fillTree(p: VfsProvider, fifo = true): Promise<Buffer> {
  const large = Buffer.alloc(3 * 1024 * 1024 + 123);
  for (let i = 0; i < large.length; i += 4096) large.writeUInt32LE(i, i);
  await p.mkdir("/dir", 0o750, ALICE);
  await p.mkdir("/dir/sub", 0o700, ROOT);
  await writeAll(p, "/dir/sub/file", Buffer.from("hello"), 0o640, ALICE);
  await writeAll(p, "/large", large, 0o600, ROOT);
  await writeAll(p, "/setuid", Buffer.from("#!"), 0o4755, ROOT);
  await writeAll(p, "/empty", Buffer.alloc(0));
  await p.link("/dir/sub/file", "/hardlink");
  await p.symlink("dir/sub/file", "/sym", ALICE);
  if (fifo) await p.mknod("/fifo", "fifo", 0o600, ALICE);
  await p.setattr("/dir/sub/file", { atimeMs: T1, mtimeMs: T2 });
  await p.setattr("/dir/sub", { atimeMs: T2, mtimeMs: T1 });
  return large;
}

test("a memory mount's tree is copied whole: files, dirs, symlinks, modes, owners, times, links", async () => {
  await withTmp(async (dir) => {
    const original = new MemoryProvider();
    const large = await fillTree(original);
    await original.setattr("/", { mode: 0o1777, uid: 5, gid: 6 });
    const copy = new MemoryProvider();
    const { renamed, image } = await copyContents(original, copy, dir);
    assert.equal(image.kind, "memory");
    assert.deepEqual(await view(copy), await view(original));
    assert.ok(Buffer.compare(await readAll(copy, "/large"), large) === 0, "large file intact");
    // A hard link is still one file (one id), and every changed id is reported.
    const [a, b] = [await copy.stat("/dir/sub/file"), await copy.stat("/hardlink")];
    assert.equal(a.fileId, b.fileId);
    assert.equal(a.nlink, 2);
    const oldId = (await original.stat("/hardlink")).fileId!;
    assert.equal(renamed.get(oldId) ?? oldId, a.fileId);
    // The quota counts what was imported.
    assert.deepEqual(copy.used, original.used);
    // Independent: each writes its own.
    await writeAll(copy, "/only-copy", Buffer.from("c"));
    const h = await copy.open("/hardlink", RW);
    await h.write(0, Buffer.from("HE"));
    await h.close();
    assert.equal((await readAll(original, "/dir/sub/file")).toString(), "hello");
    assert.equal((await readAll(copy, "/dir/sub/file")).toString(), "HEllo");
    await rejectsErrno(original.stat("/only-copy"), Errno.ENOENT);
  });
});

test("a copy of a memory mount keeps its quota: what does not fit fails, as in the original", async () => {
  await withTmp(async (dir) => {
    const original = new MemoryProvider({ maxBytes: 64 * 1024 });
    await writeAll(original, "/a", Buffer.alloc(40 * 1024, 1));
    const copy = new MemoryProvider({ maxBytes: 64 * 1024 });
    await copyContents(original, copy, dir);
    await rejectsErrno(writeAll(copy, "/b", Buffer.alloc(40 * 1024, 2)), Errno.ENOSPC);
    // A copy given a smaller budget than its contents is refused, not silently cut.
    await rejectsErrno(
      copyContents(original, new MemoryProvider({ maxBytes: 16 * 1024 }), dir),
      Errno.ENOSPC,
    );
  });
});

test("an overlay's upper layer, whiteouts, owners and root attributes are copied; the lower is never written", async () => {
  await withTmp(async (base) => {
    const lower = join(base, "lower");
    await mkdir(join(lower, "gone-dir", "inner"), { recursive: true });
    await writeFile(join(lower, "keep"), "lower keep");
    await writeFile(join(lower, "edit"), "lower edit");
    await writeFile(join(lower, "gone"), "lower gone");
    await writeFile(join(lower, "gone-dir", "inner", "f"), "f");
    const open = (parent: string, sizeBytes = 1 << 30) =>
      mkdir(join(base, parent), { recursive: true }).then(() =>
        openHostOverlay({
          hostPath: lower,
          upperParentDir: join(base, parent),
          quota: quotaOfSize(sizeBytes),
        }),
      );
    const { provider: original } = await open("a");
    await fillTree(original, false); // a host directory holds no FIFO
    const h = await original.open("/edit", RW); // copy-up
    await h.write(0, Buffer.from("UPPER"));
    await h.close();
    await original.setattr("/edit", { uid: 1000, gid: 1000 }); // guest's chown of a copied-up file
    await original.unlink("/gone"); // whiteout
    await original.rmdir("/gone-dir/inner").catch(() => undefined);
    await original.unlink("/gone-dir/inner/f").catch(() => undefined);
    await original.rmdir("/gone-dir/inner");
    await original.rmdir("/gone-dir");
    await original.mkdir("/gone-dir", 0o755, ALICE); // opaque: the lower contents stay hidden
    await original.setattr("/", { mode: 0o700, uid: 7, gid: 8 });
    const { provider: copy } = await open("b");
    await copyContents(original, copy, base);
    assert.deepEqual(await view(copy, false), await view(original, false));
    assert.deepEqual(await copy.readdir("/gone-dir"), []);
    await rejectsErrno(copy.stat("/gone"), Errno.ENOENT);
    assert.equal((await copy.stat("/edit")).uid, 1000);
    assert.deepEqual(
      await copy.statfs(),
      await original.statfs(),
      "the copy's quota counts its layer",
    );
    // Independent, and the lower directory is never written by either.
    const k = await copy.open("/keep", { ...RW, truncate: true });
    await k.write(0, Buffer.from("copy keep"));
    await k.close();
    assert.equal((await readAll(copy, "/keep")).toString(), "copy keep");
    assert.equal((await readAll(original, "/keep")).toString(), "lower keep");
    assert.equal(await readFile(join(lower, "keep"), "utf8"), "lower keep");
    assert.equal(await readFile(join(lower, "edit"), "utf8"), "lower edit");
    assert.equal(await readFile(join(lower, "gone"), "utf8"), "lower gone");
    // A copy whose budget is smaller than the layer it is given is refused.
    const { provider: small } = await open("c", 64 * 1024);
    await rejectsErrno(copyContents(original, small, base), Errno.ENOSPC);
    await Promise.all([original.close(), copy.close(), small.close()]);
  });
});

test("damaged contents are refused with a clear error", async () => {
  await withTmp(async (dir) => {
    const original = new MemoryProvider();
    await fillTree(original);
    const dataPath = join(dir, "data");
    const sink = await BlobFile.create(dataPath);
    const image = await original.exportContents(sink);
    await sink.close();
    // A short data file.
    await truncate(dataPath, 1000);
    const short = await BlobFile.openRead(dataPath);
    await assert.rejects(new MemoryProvider().importContents(image, short), /data file ends/);
    await short.close();
    // An entry that would escape its tree.
    const bad = { ...image, entries: [{ ...image.entries[0]!, path: "/../x" }] } as MountImage;
    const source = await BlobFile.openRead(dataPath);
    await assert.rejects(new MemoryProvider().importContents(bad, source), /bad entry/);
    // Another kind of image.
    await assert.rejects(
      new MemoryProvider().importContents({ ...image, kind: "overlay" } as MountImage, source),
      /not a memory mount's/,
    );
    await source.close();
  });
});
