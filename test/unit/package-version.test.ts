// The kernel source package's version is part of the minimal kernel's cache key, asked on every
// sandbox start: dpkg-query runs once per installed file, not once per CLI call (issue 16).
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { installedPackageVersion } from "../../src/setup/source-version.js";
import { packageRoot } from "../../src/paths.js";

test("dpkg-query is asked once per installed file, and again when the file changes", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "wheellock-pkgver-"));
  const saved = { path: process.env.PATH, cache: process.env.WHEELLOCK_CACHE_DIR };
  t.after(() => {
    process.env.PATH = saved.path;
    if (saved.cache === undefined) delete process.env.WHEELLOCK_CACHE_DIR;
    else process.env.WHEELLOCK_CACHE_DIR = saved.cache;
    rmSync(dir, { recursive: true, force: true });
  });
  // A fake dpkg-query that counts its calls and answers the version in a file.
  const calls = join(dir, "calls");
  const answer = join(dir, "answer");
  writeFileSync(calls, "");
  writeFileSync(answer, "6.1.99-1");
  writeFileSync(join(dir, "dpkg-query"), `#!/bin/sh\necho x >> ${calls}\ncat ${answer}\n`);
  chmodSync(join(dir, "dpkg-query"), 0o755);
  process.env.PATH = `${dir}:${saved.path ?? ""}`;
  process.env.WHEELLOCK_CACHE_DIR = join(dir, "cache");
  const tarball = join(dir, "linux-source.tar.xz");
  writeFileSync(tarball, "v1");
  const callCount = (): number => readFileSync(calls, "utf8").split("\n").length - 1;

  assert.equal(await installedPackageVersion("linux-source-6.1", tarball), "6.1.99-1");
  assert.equal(await installedPackageVersion("linux-source-6.1", tarball), "6.1.99-1");
  assert.equal(callCount(), 1, "the second call is answered from the memo");

  // An upgrade unpacks a new file: the memo no longer applies.
  writeFileSync(answer, "6.1.100-1");
  writeFileSync(tarball, "v2, longer");
  utimesSync(tarball, new Date(2030, 0, 1), new Date(2030, 0, 1));
  assert.equal(await installedPackageVersion("linux-source-6.1", tarball), "6.1.100-1");
  assert.equal(callCount(), 2);

  // Not installed through dpkg (empty answer) or no such file: undefined, nothing cached.
  writeFileSync(answer, "");
  assert.equal(await installedPackageVersion("other-pkg", tarball), undefined);
  assert.equal(await installedPackageVersion("linux-source-6.1", join(dir, "absent")), undefined);
});

test("packageRoot is the folder with package.json, whatever the module's depth", () => {
  const root = packageRoot();
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { name: string };
  assert.equal(pkg.name, "wheellock");
});
