// copySparse (a fork's, a checkpoint's and a copy's disk copies) on a full disk: one line
// naming where space ran out, as the checkpoint store's own ENOSPC message does.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { copySparse } from "../../src/sandbox/snapshot-store.js";

const scratch = mkdtempSync(join(tmpdir(), "wheellock-copy-sparse-"));
const small = join(scratch, "small");
mkdirSync(small);
// A 1 MiB tmpfs: needs root (mount); skipped elsewhere.
const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", small]).status === 0;
process.on("exit", () => {
  if (mounted) spawnSync("umount", [small]);
  rmSync(scratch, { recursive: true, force: true });
});

test(
  "a copy that fills the disk is one line naming the target's dir (ENOSPC)",
  {
    skip: mounted ? false : "needs root to mount a small tmpfs",
  },
  async () => {
    const from = join(scratch, "disk.img");
    writeFileSync(from, randomBytes(3 * 1024 * 1024));
    const to = join(small, "disk0.img");
    await assert.rejects(copySparse(from, to), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, "ENOSPC");
      assert.equal(
        err.message,
        `copying ${from} to ${to} failed: ENOSPC (no space left under ${small})`,
      );
      return true;
    });
    // Other failures keep cp's own words.
    await assert.rejects(copySparse(join(scratch, "missing"), join(scratch, "out")), /cp failed/);
    const fits = join(scratch, "fits.img");
    writeFileSync(fits, "x");
    await copySparse(fits, join(scratch, "fits-copy.img"));
    assert.equal(readFileSync(join(scratch, "fits-copy.img"), "utf8"), "x");
  },
);
