/**
 * Cache invalidation: the server's unsolicited notifications are well-formed FUSE messages
 * naming the node ids the guest holds, and the host watcher reports host-side changes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Duplex, PassThrough } from "node:stream";
import { FuseServer, MemoryProvider } from "../../src/vfs/index.js";
import { NotifyCode } from "../../src/vfs/fuse-constants.js";
import { HostTreeWatcher } from "../../src/sandbox/host-watch.js";
import { flushed as tick, parse, served } from "./vfs-notify-helpers.js";

const ROOT = 1n;

test("invalidate: entry in the parent, then the node and the parent, for names the guest holds", async () => {
  const { server, k, sent } = await served();
  const dir = await k.mkdir(ROOT, "dir");
  const { nodeid: file, fh } = await k.create(dir, "file.txt");
  await k.release(fh);
  server.invalidate("/dir/file.txt");
  server.invalidate("/dir/file.txt"); // de-duplicated
  await tick();
  assert.deepEqual(parse(sent()), [
    { code: NotifyCode.INVAL_ENTRY, parent: dir, name: "file.txt" },
    { code: NotifyCode.INVAL_INODE, nodeid: file, offset: 0n, length: 0n },
    { code: NotifyCode.INVAL_INODE, nodeid: dir, offset: 0n, length: 0n },
  ]);
});

test("invalidate: a name the guest never looked up still drops a cached negative entry", async () => {
  const { server, k, sent } = await served();
  const dir = await k.mkdir(ROOT, "d");
  server.invalidate("/d/new");
  server.invalidate("/unknown/deeper/x"); // nothing the guest holds: nothing sent
  await tick();
  assert.deepEqual(parse(sent()), [
    { code: NotifyCode.INVAL_ENTRY, parent: dir, name: "new" },
    { code: NotifyCode.INVAL_INODE, nodeid: dir, offset: 0n, length: 0n },
  ]);
});

test("invalidate: nothing before INIT, nothing once the stream is gone", async () => {
  const server = new FuseServer({ provider: new MemoryProvider() });
  const guestOut = new PassThrough();
  const chunks: Buffer[] = [];
  guestOut.on("data", (c: Buffer) => chunks.push(c));
  const host = Duplex.from({ readable: new PassThrough(), writable: guestOut });
  server.attach(host);
  server.invalidate("/x");
  await tick();
  assert.equal(chunks.length, 0);
  await server.close();
  server.invalidate("/x");
  await tick();
  assert.equal(chunks.length, 0);
});

test("host watcher: new files and directories, and files in new directories, are reported", async () => {
  const root = mkdtempSync(join(tmpdir(), "wl-watch-"));
  try {
    mkdirSync(join(root, "a"));
    const seen: string[] = [];
    const watcher = new HostTreeWatcher(root, (p) => seen.push(p));
    await watcher.start();
    assert.equal(watcher.watchedDirs, 2);
    writeFileSync(join(root, "a", "f.txt"), "1");
    mkdirSync(join(root, "b"));
    await waitFor(() => seen.includes("a/f.txt") && seen.includes("b"));
    await waitFor(() => watcher.watchedDirs === 3);
    writeFileSync(join(root, "b", "g.txt"), "2");
    await waitFor(() => seen.includes("b/g.txt"));
    rmSync(join(root, "b"), { recursive: true });
    await waitFor(() => watcher.watchedDirs === 2);
    watcher.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("host watcher: names made in a new directory before its watch existed are reported", async () => {
  const root = mkdtempSync(join(tmpdir(), "wl-watch-"));
  try {
    const seen: string[] = [];
    const watcher = new HostTreeWatcher(root, (p) => seen.push(p));
    await watcher.start();
    // Made together, before the watcher can have watched "n": no event of "n" tells of them.
    mkdirSync(join(root, "n", "deep"), { recursive: true });
    writeFileSync(join(root, "n", "early.txt"), "1");
    writeFileSync(join(root, "n", "deep", "earlier.txt"), "2");
    await waitFor(() => seen.includes("n/early.txt") && seen.includes("n/deep/earlier.txt"));
    watcher.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("host watcher: the directory bound holds, and the rest is counted as skipped", async () => {
  const root = mkdtempSync(join(tmpdir(), "wl-watch-"));
  try {
    for (let i = 0; i < 5; i++) mkdirSync(join(root, `d${i}`));
    const watcher = new HostTreeWatcher(root, () => undefined, 3);
    await watcher.start();
    assert.equal(watcher.watchedDirs, 3);
    assert.equal(watcher.skipped, 3);
    watcher.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

async function waitFor(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
}
