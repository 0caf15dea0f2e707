// The guest kernel may keep a directory's listing between opens only while it is the listing
// the host has now (src/vfs/dir-listings.ts): checked on the wire with the fake kernel.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FOPEN_CACHE_DIR, FOPEN_KEEP_CACHE, Opcode } from "../../src/vfs/fuse-constants.js";
import { HostDirProvider } from "../../src/vfs/index.js";
import type { FakeKernel } from "./vfs-fake-kernel.js";
import { kernelFor } from "./vfs-posix-suite.js";

const KEEP = FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE;

function body(...parts: (number | bigint)[]): Buffer {
  return Buffer.concat(
    parts.map((v) => {
      const b = Buffer.alloc(typeof v === "bigint" ? 8 : 4);
      if (typeof v === "bigint") b.writeBigUInt64LE(v);
      else b.writeUInt32LE(v);
      return b;
    }),
  );
}

async function opendir(k: FakeKernel, node: bigint): Promise<{ fh: bigint; flags: number }> {
  const p = await k.call(Opcode.OPENDIR, node, body(0, 0));
  return { fh: p.readBigUInt64LE(0), flags: p.readUInt32LE(8) };
}

async function readdir(k: FakeKernel, node: bigint, fh: bigint): Promise<void> {
  await k.call(Opcode.READDIR, node, body(fh, 0n, 4096, 0, 0n, 0, 0));
}

async function releasedir(k: FakeKernel, node: bigint, fh: bigint): Promise<void> {
  await k.call(Opcode.RELEASEDIR, node, body(fh, 0, 0, 0n));
}

/** Opens, reads and releases: the flags that open got. */
async function list(k: FakeKernel, node: bigint): Promise<number> {
  const { fh, flags } = await opendir(k, node);
  await readdir(k, node, fh);
  await releasedir(k, node, fh);
  return flags;
}

async function withHostDir(fn: (k: FakeKernel, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "wheellock-listing-"));
  try {
    await writeFile(join(dir, "a"), "a");
    await fn(await kernelFor(await HostDirProvider.open(dir)), dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("dir listings: an unchanged directory is kept after a confirmed open; a host edit drops it", async () => {
  await withHostDir(async (k, dir) => {
    assert.equal(await list(k, 1n), FOPEN_CACHE_DIR, "first open: nothing to keep");
    assert.equal(await list(k, 1n), KEEP, "same listing, the first open was read");
    assert.equal(await list(k, 1n), KEEP);
    await writeFile(join(dir, "b"), "b"); // behind the guest's back, no invalidation
    assert.equal(await list(k, 1n), FOPEN_CACHE_DIR, "the host's listing changed");
    assert.equal(await list(k, 1n), KEEP);
  });
});

test("dir listings: not kept until the kernel shows it took the dropping open", async () => {
  await withHostDir(async (k) => {
    const first = await opendir(k, 1n);
    assert.equal(first.flags, FOPEN_CACHE_DIR);
    await releasedir(k, 1n, first.fh); // never read: maybe the kernel never saw this open
    assert.equal(await list(k, 1n), FOPEN_CACHE_DIR);
    assert.equal(await list(k, 1n), KEEP);
  });
});

test("dir listings: a handle with an older listing, open or read, blocks keeping", async () => {
  await withHostDir(async (k, dir) => {
    const old = await opendir(k, 1n); // listing {a}
    await writeFile(join(dir, "b"), "b");
    assert.equal(await list(k, 1n), FOPEN_CACHE_DIR, "listing {a,b}: dropped");
    // The old handle is still open: its replies could refill the cache with {a}.
    assert.equal(await list(k, 1n), FOPEN_CACHE_DIR);
    await readdir(k, 1n, old.fh); // and does
    assert.equal(await list(k, 1n), FOPEN_CACHE_DIR);
    await releasedir(k, 1n, old.fh);
    assert.equal(await list(k, 1n), FOPEN_CACHE_DIR, "the open after the old handle went");
    assert.equal(await list(k, 1n), KEEP);
  });
});
