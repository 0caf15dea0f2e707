import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Errno,
  HostDirProvider,
  MemoryProvider,
  ReadOnlyProvider,
  RouterProvider,
  SingleFileProvider,
  openHostOverlay,
  quotaOfSize,
} from "../../src/vfs/index.js";
import { kernelFor, rejectsErrno } from "./vfs-posix-suite.js";

const dir = mkdtempSync(join(tmpdir(), "wheellock-single-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, "app.json"), '{"a":1}');
writeFileSync(join(dir, "sibling-secret"), "SECRET");
symlinkSync(join(dir, "sibling-secret"), join(dir, "link"));

test("a single-file mount serves that file and nothing else of its directory", async () => {
  const k = await kernelFor(
    new RouterProvider({
      "/etc/app.json": new SingleFileProvider(await HostDirProvider.open(dir), "app.json"),
      "/work": new MemoryProvider(),
    }),
  );
  const etc = (await k.lookup(1n, "etc")).nodeid;
  assert.deepEqual(await k.readdir(etc), ["app.json"]);
  const file = await k.lookup(etc, "app.json");
  assert.equal(file.attr.mode & 0o170000, 0o100000, "a regular file");
  const fh = await k.open(file.nodeid, 2);
  assert.equal((await k.read(fh, 0, 100)).toString(), '{"a":1}');
  await k.write(fh, 7, Buffer.from("\n"));
  await k.release(fh);
  assert.equal(readFileSync(join(dir, "app.json"), "utf8"), '{"a":1}\n', "writes reach the host");
  assert.equal((await k.setattr(file.nodeid, { mode: 0o100600 })).mode & 0o777, 0o600);
  // Below a file nothing can be named, created or listed; the mount point cannot go away.
  await rejectsErrno(k.lookup(file.nodeid, "sibling-secret"), Errno.ENOTDIR);
  await rejectsErrno(k.create(file.nodeid, "x"), Errno.ENOTDIR);
  await rejectsErrno(k.unlink(etc, "app.json"), Errno.EBUSY);
  await rejectsErrno(k.create(etc, "sibling-secret"), Errno.EROFS);
  await rejectsErrno(k.lookup(etc, "sibling-secret"), Errno.ENOENT);
});

test("a single-file mount never serves a symlink, and read-only / overlay wrappers hold", async () => {
  const viaLink = new SingleFileProvider(await HostDirProvider.open(dir), "link");
  await assert.rejects(
    viaLink.stat("/"),
    (err: Error & { errno?: number }) => err.errno === Errno.ENOENT,
  );
  assert.throws(() => new SingleFileProvider(new MemoryProvider(), "../x"));

  const ro = await kernelFor(
    new RouterProvider({
      "/app.json": new ReadOnlyProvider(
        new SingleFileProvider(await HostDirProvider.open(dir), "app.json"),
      ),
    }),
  );
  const roFile = await ro.lookup(1n, "app.json");
  await rejectsErrno(ro.open(roFile.nodeid, 2), Errno.EROFS);

  const overlay = await openHostOverlay({
    hostPath: dir,
    upperParentDir: dir,
    quota: quotaOfSize(1 << 30),
  });
  const ov = await kernelFor(
    new RouterProvider({ "/app.json": new SingleFileProvider(overlay.provider, "app.json") }),
  );
  const ovFile = await ov.lookup(1n, "app.json");
  const fh = await ov.open(ovFile.nodeid, 2);
  await ov.write(fh, 0, Buffer.from("CHANGED"));
  assert.equal((await ov.read(fh, 0, 7)).toString(), "CHANGED");
  await ov.release(fh);
  assert.equal(
    readFileSync(join(dir, "app.json"), "utf8").slice(0, 7),
    '{"a":1}',
    "host file untouched",
  );
  await ov.server.close();
});
