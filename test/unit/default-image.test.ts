// SLOW (~25 s on first run, instant afterwards): builds the default image with mmdebstrap from the
// Debian mirror, unless the user's cache already holds it (then this checks that cached image).
// WHEELLOCK_TEST_FRESH_IMAGE=1 builds into a temporary cache to exercise the build itself.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ensureDefaultImage } from "../../src/image/default-image.js";
import { cacheDir } from "../../src/paths.js";
import { findExecutable } from "../../src/util/which.js";

const debugfs = findExecutable("debugfs");
const missingTools = !findExecutable("mmdebstrap") || !debugfs;

function inImage(image: string, request: string): string {
  const res = spawnSync(debugfs!, ["-R", request, image], {
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  return res.stdout;
}

test(
  "default image (slow): shell, curl, CA bundle, users; cached second call",
  { skip: missingTools, timeout: 300_000 },
  async (t) => {
    let cache = cacheDir();
    if (process.env.WHEELLOCK_TEST_FRESH_IMAGE === "1") {
      cache = mkdtempSync(join(tmpdir(), "wl-image-"));
      t.after(() => rmSync(cache, { recursive: true, force: true }));
    }
    const first = await ensureDefaultImage(cache, (m) => t.diagnostic(m));
    assert.match(first.digest, /^sha256:[0-9a-f]{64}$/);
    assert.ok(first.ext4Path.endsWith(`${first.digest.slice(7)}.ext4`));

    const fsck = spawnSync(findExecutable("e2fsck")!, ["-fn", first.ext4Path], {
      encoding: "utf8",
    });
    assert.equal(fsck.status, 0, fsck.stdout);

    // /bin is a symlink to usr/bin (merged /usr), so look at the real paths.
    assert.match(inImage(first.ext4Path, "stat /usr/bin/sh"), /Type: symlink/);
    assert.match(inImage(first.ext4Path, "stat /usr/bin/dash"), /Type: regular\s+Mode:\s+0755/);
    assert.match(inImage(first.ext4Path, "stat /usr/bin/curl"), /Type: regular\s+Mode:\s+0755/);
    assert.match(
      inImage(first.ext4Path, "stat /usr/bin/su"),
      /Mode:\s+04755[\s\S]*User:\s+0\s+Group:\s+0/,
    );
    assert.match(
      inImage(first.ext4Path, "cat /etc/ssl/certs/ca-certificates.crt"),
      /BEGIN CERTIFICATE/,
    );
    const passwd = inImage(first.ext4Path, "cat /etc/passwd");
    assert.match(passwd, /^root:x:0:0:/m);
    assert.match(passwd, /^nobody:x:65534:65534:/m);
    assert.match(passwd, /^user:x:1000:1000:.*:\/home\/user:\/bin\/bash$/m);
    assert.match(inImage(first.ext4Path, "cat /etc/group"), /^nogroup:x:65534:$/m);
    for (const mountPoint of ["/dev", "/proc", "/sys", "/run"]) {
      assert.match(
        inImage(first.ext4Path, `stat ${mountPoint}`),
        /Type: directory\s+Mode:\s+0755[\s\S]*User:\s+0\s+Group:\s+0/,
        mountPoint,
      );
    }
    assert.match(inImage(first.ext4Path, "stat /tmp"), /Mode:\s+01777/);
    assert.match(inImage(first.ext4Path, "stat /home/user"), /User:\s+1000\s+Group:\s+1000/);
    assert.doesNotMatch(
      inImage(first.ext4Path, "cat /etc/resolv.conf"),
      /nameserver/,
      "host resolv.conf must not leak in",
    );

    // Cached means nothing is built or written again: no build step reports progress and the
    // image file is the same one, untouched. (Structural, not a wall-clock limit: a loaded CI
    // machine once took over 200 ms for these two file reads.)
    const before = statSync(first.ext4Path);
    const secondLog: string[] = [];
    const second = await ensureDefaultImage(cache, (m) => secondLog.push(m));
    assert.deepEqual(secondLog, [], "the cached call builds nothing");
    const after = statSync(first.ext4Path);
    assert.equal(after.ino, before.ino, "the image file is not replaced");
    assert.equal(after.mtimeMs, before.mtimeMs, "the image file is not rewritten");
    assert.deepEqual(second, first);
    assert.deepEqual(
      readdirSync(dirname(first.ext4Path)).filter(
        (n) => n.startsWith("build-") || n.includes(".tmp-"),
      ),
      [],
      "no build leftovers",
    );
  },
);
