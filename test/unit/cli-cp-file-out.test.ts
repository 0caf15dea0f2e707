// `wheellock cp` out of a guest: the guest shapes what arrives. A file that keeps growing while
// it is copied (a guest appending and punching holes behind the reader keeps its own disk
// small) must not stream without end into the host's disk (review rev19b F3); the copy stops
// at the size the file had when it was listed. A symlink at the destination is not written
// through, and a temp name that exists is never reused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { copyGuestFileOut } from "../../src/cli/cp-file-out.js";
import type { SandboxApi } from "../../src/sandbox/index.js";

/** A sandbox whose file never ends: random chunks for as long as anyone reads. */
function endlessSandbox(reads: { chunks: number; destroyed: boolean }): SandboxApi {
  return {
    readFileStream: () =>
      new Readable({
        read() {
          reads.chunks++;
          this.push(randomBytes(65_536));
        },
        destroy(err, done) {
          reads.destroyed = true;
          done(err);
        },
      }),
  } as unknown as SandboxApi;
}

test("a file that grows while it is copied stops at its listed size, and the guest read ends", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "wheellock-cp-out-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const reads = { chunks: 0, destroyed: false };
  const to = join(dir, "out");
  await copyGuestFileOut(endlessSandbox(reads), "/g", to, { sizeBytes: 1_000_000, mode: 0o644 });
  assert.equal(statSync(to).size, 1_000_000);
  assert.ok(reads.chunks < 40, `${reads.chunks} chunks read for 1 MB`);
  assert.equal(reads.destroyed, true);
});

test("a symlink at the destination is refused, and an exclusive name that exists is not reused", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "wheellock-cp-out-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const victim = join(dir, "victim");
  writeFileSync(victim, "keep");
  symlinkSync(victim, join(dir, "link"));
  const sb = endlessSandbox({ chunks: 0, destroyed: false });
  await assert.rejects(
    copyGuestFileOut(sb, "/g", join(dir, "link"), { sizeBytes: 10, mode: 0o644 }),
    /ELOOP/,
  );
  await assert.rejects(
    copyGuestFileOut(sb, "/g", victim, { sizeBytes: 10, mode: 0o644, exclusive: true }),
    /EEXIST/,
  );
  assert.equal(readFileSync(victim, "utf8"), "keep");
});
