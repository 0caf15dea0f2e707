// Byte and inode budgets of writable layers (QuotaProvider): overlay upper layers on the
// host, memory mounts, opt-in host_fs. Driven through raw FUSE requests, as a guest would.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, lstat, writeFile, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Errno,
  HostDirProvider,
  MemoryProvider,
  QuotaProvider,
  openHostOverlay,
  type VfsProvider,
} from "../../src/vfs/index.js";
import { removeTree } from "../../src/util/remove-tree.js";
import { kernelFor, rejectsErrno } from "./vfs-posix-suite.js";
import type { FakeKernel } from "./vfs-fake-kernel.js";

const ROOT = 1n;
const KIB = 1024;
const BUDGET = { sizeBytes: 256 * KIB, inodes: 32 };
const O_RDWR = 2;
const O_TRUNC = 0o1000;
const O_APPEND = 0o2000;

/** Bytes of regular files under `dir` on the host (what the layer really holds). */
async function hostFileBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await lstat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

interface Layer {
  readonly provider: VfsProvider;
  /** Host bytes in the layer, where it is on the host. */
  readonly hostBytes?: () => Promise<number>;
  readonly cleanup: () => Promise<void>;
}

const LAYERS: [string, () => Promise<Layer>][] = [
  [
    "memory",
    async () => ({
      provider: new MemoryProvider({ maxBytes: BUDGET.sizeBytes, maxInodes: BUDGET.inodes }),
      cleanup: async () => undefined,
    }),
  ],
  [
    "overlay upper layer",
    async () => {
      const base = await mkdtemp(join(tmpdir(), "wheellock-quota-"));
      await mkdir(join(base, "lower"));
      const { provider, upperDir } = await openHostOverlay({
        hostPath: join(base, "lower"),
        upperParentDir: base,
        quota: BUDGET,
      });
      return {
        provider,
        hostBytes: () => hostFileBytes(upperDir),
        cleanup: () => removeTree(base),
      };
    },
  ],
];

function quotaTest(name: string, body: (k: FakeKernel, layer: Layer) => Promise<void>): void {
  for (const [label, make] of LAYERS) {
    test(`quota (${label}): ${name}`, async () => {
      const layer = await make();
      try {
        await body(await kernelFor(layer.provider), layer);
      } finally {
        await layer.provider.close?.();
        await layer.cleanup();
      }
    });
  }
}

/** Blocks and inodes in use, as the guest's df computes them. */
async function used(k: FakeKernel): Promise<{ kib: number; inodes: number }> {
  const s = await k.statfs();
  return { kib: ((s.blocks - s.blocksFree) * s.blockBytes) / KIB, inodes: s.files - s.filesFree };
}

quotaTest("statfs (the guest's df) reports the budget and what is in use", async (k) => {
  const s = await k.statfs();
  assert.deepEqual(
    [s.blockBytes, s.blocks, s.blocksFree, s.files, s.filesFree],
    [4096, 64, 64, 32, 32],
  );
  const f = await k.create(ROOT, "a");
  await k.write(f.fh, 0, Buffer.alloc(10 * KIB));
  await k.release(f.fh);
  await k.mkdir(ROOT, "d");
  assert.deepEqual(await used(k), { kib: 12 + 4, inodes: 2 });
});

quotaTest(
  "attack: writing past the budget fails with ENOSPC, the host holds no more",
  async (k, layer) => {
    const f = await k.create(ROOT, "fill");
    const chunk = Buffer.alloc(64 * KIB, 1);
    let written = 0;
    let refused = 0;
    for (let i = 0; i < 8; i++) {
      try {
        written += await k.write(f.fh, i * chunk.length, chunk);
      } catch {
        refused++;
      }
    }
    assert.equal(written, 256 * KIB);
    assert.equal(refused, 4);
    await rejectsErrno(k.write(f.fh, 256 * KIB, Buffer.alloc(1)), Errno.ENOSPC);
    // Overwriting what is there needs no new space.
    assert.equal(await k.write(f.fh, 0, chunk), chunk.length);
    // A sparse write far out counts its full size (the host file would be that long).
    await rejectsErrno(k.write(f.fh, 1 << 30, Buffer.alloc(1)), Errno.ENOSPC);
    await k.release(f.fh);
    if (layer.hostBytes) assert.equal(await layer.hostBytes(), 256 * KIB);
    assert.deepEqual(await used(k), { kib: 256, inodes: 1 });
  },
);

quotaTest("truncate, O_TRUNC and unlink give the space back", async (k) => {
  const f = await k.create(ROOT, "a");
  await k.write(f.fh, 0, Buffer.alloc(200 * KIB));
  await k.setattr(f.nodeid, { size: 40 * KIB, fh: f.fh }); // ftruncate
  assert.equal((await used(k)).kib, 40);
  await k.setattr(f.nodeid, { size: 8 * KIB }); // truncate(path)
  assert.equal((await used(k)).kib, 8);
  await rejectsErrno(k.setattr(f.nodeid, { size: 1 << 20 }), Errno.ENOSPC);
  await k.release(f.fh);
  const fh = await k.open(f.nodeid, O_RDWR | O_TRUNC);
  assert.equal((await used(k)).kib, 0);
  await k.write(fh, 0, Buffer.alloc(100 * KIB));
  await k.release(fh);
  await k.unlink(ROOT, "a");
  assert.deepEqual(await used(k), { kib: 0, inodes: 0 });
});

quotaTest(
  "attack: an unlinked file stays charged while open (no space from thin air)",
  async (k) => {
    const f = await k.create(ROOT, "ghost");
    await k.write(f.fh, 0, Buffer.alloc(200 * KIB));
    await k.unlink(ROOT, "ghost");
    // The name is gone, the host still holds the bytes: nothing is given back yet.
    assert.deepEqual(await used(k), { kib: 200, inodes: 1 });
    await rejectsErrno(k.write(f.fh, 200 * KIB, Buffer.alloc(100 * KIB)), Errno.ENOSPC);
    const g = await k.create(ROOT, "other");
    await rejectsErrno(k.write(g.fh, 0, Buffer.alloc(100 * KIB)), Errno.ENOSPC);
    await k.release(f.fh);
    assert.equal(await k.write(g.fh, 0, Buffer.alloc(100 * KIB)), 100 * KIB);
    await k.release(g.fh);
    assert.deepEqual(await used(k), { kib: 100, inodes: 1 });
  },
);

quotaTest("hard links share one charge; the space returns with the last name", async (k) => {
  const f = await k.create(ROOT, "a");
  await k.write(f.fh, 0, Buffer.alloc(100 * KIB));
  await k.release(f.fh);
  await k.link(f.nodeid, ROOT, "b");
  await k.link(f.nodeid, ROOT, "c");
  assert.deepEqual(await used(k), { kib: 100, inodes: 1 });
  await k.unlink(ROOT, "a");
  await k.unlink(ROOT, "b");
  assert.deepEqual(await used(k), { kib: 100, inodes: 1 });
  // Renaming one name of a file onto another is a no-op, not a removal.
  await k.link((await k.lookup(ROOT, "c")).nodeid, ROOT, "d");
  await k.rename(ROOT, "c", ROOT, "d");
  assert.deepEqual(await used(k), { kib: 100, inodes: 1 });
  await k.unlink(ROOT, "c").catch(() => undefined);
  await k.unlink(ROOT, "d");
  assert.deepEqual(await used(k), { kib: 0, inodes: 0 });
});

quotaTest(
  "a rename over a file frees the file it replaced; over a directory, the directory",
  async (k) => {
    for (const name of ["old", "new"]) {
      const f = await k.create(ROOT, name);
      await k.write(f.fh, 0, Buffer.alloc(100 * KIB));
      await k.release(f.fh);
    }
    await k.rename(ROOT, "new", ROOT, "old");
    assert.deepEqual(await used(k), { kib: 100, inodes: 1 });
    await k.mkdir(ROOT, "d1");
    await k.mkdir(ROOT, "d2");
    await k.rename(ROOT, "d1", ROOT, "d2");
    assert.deepEqual(await used(k), { kib: 104, inodes: 2 });
  },
);

quotaTest(
  "inodes: files, directories and symlinks beyond the count fail with ENOSPC",
  async (k) => {
    for (let i = 0; i < 30; i++) await k.mkdir(ROOT, `d${i}`);
    const f = await k.create(ROOT, "f");
    await k.release(f.fh);
    await k.symlink(ROOT, "l", "f");
    assert.equal((await k.statfs()).filesFree, 0);
    await rejectsErrno(k.mkdir(ROOT, "more"), Errno.ENOSPC);
    await rejectsErrno(k.create(ROOT, "more"), Errno.ENOSPC);
    await rejectsErrno(k.symlink(ROOT, "more", "x"), Errno.ENOSPC);
    await k.rmdir(ROOT, "d0");
    await k.unlink(ROOT, "l");
    await k.mkdir(ROOT, "again");
    await k.symlink(ROOT, "again-link", "f");
    assert.equal((await k.statfs()).filesFree, 0);
  },
);

quotaTest("attack: concurrent writers cannot share the same free space", async (k, layer) => {
  const names = ["w0", "w1", "w2", "w3", "shared"];
  const files = await Promise.all(names.map((name) => k.create(ROOT, name)));
  const shared = files[4]!;
  const chunk = Buffer.alloc(32 * KIB, 7);
  // 4 writers, each 4 chunks into its own file and 4 into its own region of a shared one:
  // 32 writes, 1 MiB, against 256 KiB, all in flight at once.
  const writes = files
    .slice(0, 4)
    .flatMap((f, i) =>
      Array.from({ length: 4 }, (_, j) => [
        k.write(f.fh, j * chunk.length, chunk),
        k.write(shared.fh, (i * 4 + j) * chunk.length, chunk),
      ]).flat(),
    );
  const results = await Promise.allSettled(writes);
  for (const r of results) {
    if (r.status === "rejected") assert.equal((r.reason as { errno: number }).errno, Errno.ENOSPC);
  }
  assert.ok(results.some((r) => r.status === "rejected"));
  for (const f of files) await k.release(f.fh);
  let sizes = 0;
  for (const name of names) sizes += (await k.lookup(ROOT, name)).attr.size;
  assert.ok(sizes <= 256 * KIB, `${sizes} bytes stored`);
  if (layer.hostBytes) assert.equal(await layer.hostBytes(), sizes);
  assert.equal((await used(k)).kib * KIB, sizes, "the charge is what is stored");
  for (const name of names) await k.unlink(ROOT, name);
  assert.deepEqual(await used(k), { kib: 0, inodes: 0 });
});

quotaTest("appends are charged where they land", async (k) => {
  const f = await k.create(ROOT, "log", 0o644, O_RDWR | O_APPEND);
  for (let i = 0; i < 4; i++) await k.write(f.fh, 0, Buffer.alloc(50 * KIB));
  await rejectsErrno(k.write(f.fh, 0, Buffer.alloc(100 * KIB)), Errno.ENOSPC);
  await k.release(f.fh);
  assert.equal((await k.lookup(ROOT, "log")).attr.size, 200 * KIB);
  assert.equal((await used(k)).kib, 200);
});

test("quota (overlay): a copy-up is charged, and one that does not fit fails with ENOSPC", async () => {
  const base = await mkdtemp(join(tmpdir(), "wheellock-quota-"));
  try {
    const lower = join(base, "lower");
    await mkdir(join(lower, "src"), { recursive: true });
    await writeFile(join(lower, "src", "small"), Buffer.alloc(40 * KIB, 1));
    await writeFile(join(lower, "big"), Buffer.alloc(300 * KIB, 2));
    const { provider } = await openHostOverlay({
      hostPath: lower,
      upperParentDir: base,
      quota: BUDGET,
    });
    try {
      const k = await kernelFor(provider);
      const src = await k.lookup(ROOT, "src");
      const small = await k.lookup(src.nodeid, "small");
      const fh = await k.open(small.nodeid, O_RDWR);
      await k.write(fh, 0, Buffer.from("x"));
      await k.release(fh);
      assert.deepEqual(await used(k), { kib: 44, inodes: 2 }, "the file and its directory");
      const big = await k.lookup(ROOT, "big");
      await rejectsErrno(k.open(big.nodeid, O_RDWR), Errno.ENOSPC);
      assert.deepEqual(await used(k), { kib: 44, inodes: 2 }, "a failed copy-up leaves nothing");
      assert.equal((await readFile(join(lower, "big"))).length, 300 * KIB);
    } finally {
      await provider.close();
    }
  } finally {
    await removeTree(base);
  }
});

test("quota (host_fs, opt-in): bounds how much the directory grows from mount time", async () => {
  const dir = await mkdtemp(join(tmpdir(), "wheellock-quota-"));
  try {
    await writeFile(join(dir, "existing"), Buffer.alloc(100 * KIB));
    const provider = new QuotaProvider(await HostDirProvider.open(dir), {
      sizeBytes: 64 * KIB,
      inodes: 8,
    });
    const k = await kernelFor(provider);
    const f = await k.create(ROOT, "new");
    assert.equal(await k.write(f.fh, 0, Buffer.alloc(64 * KIB)), 64 * KIB);
    await rejectsErrno(k.write(f.fh, 64 * KIB, Buffer.alloc(4 * KIB)), Errno.ENOSPC);
    // Removing what was there before frees room for as much.
    await k.unlink(ROOT, "existing");
    assert.equal(await k.write(f.fh, 64 * KIB, Buffer.alloc(100 * KIB)), 100 * KIB);
    await rejectsErrno(k.write(f.fh, 164 * KIB, Buffer.alloc(4 * KIB)), Errno.ENOSPC);
    await k.release(f.fh);
    assert.equal(await hostFileBytes(dir), 164 * KIB, "never more than 100 KiB + 64 KiB");
    await provider.close();
  } finally {
    await removeTree(dir);
  }
});
