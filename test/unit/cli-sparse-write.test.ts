// `wheellock cp` out of a guest writes runs of zeros as holes: a hostile guest's terabyte of
// holes must not become a terabyte of the host's disk.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createSparseWriteStream } from "../../src/cli/sparse-write.js";

const MiB = 1024 * 1024;

/** `total` bytes of zeros with `data` at `at`, in chunks of awkward sizes. */
function chunks(total: number, at: number, data: Buffer): Buffer[] {
  const whole = Buffer.alloc(total);
  data.copy(whole, at);
  const out: Buffer[] = [];
  for (let i = 0, n = 1; i < total; n++) {
    const size = Math.min(total - i, 65_536 + ((n * 7919) % 5000));
    out.push(whole.subarray(i, i + size));
    i += size;
  }
  return out;
}

test("zeros become holes, data lands where it was, and the length counts trailing zeros", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "wheellock-sparse-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const total = 64 * MiB;
  const data = randomBytes(10_000);
  const at = 20 * MiB + 123; // not on a block boundary
  const path = join(dir, "out");
  await pipeline(Readable.from(chunks(total, at, data)), createSparseWriteStream(path, 0o640));
  const st = statSync(path);
  assert.equal(st.size, total);
  assert.equal(st.mode & 0o777, 0o640 & ~process.umask());
  assert.ok(st.blocks * 512 < MiB, `${st.blocks * 512} bytes allocated for 10 KB of data`);
  const back = readFileSync(path);
  assert.ok(back.subarray(at, at + data.length).equals(data));
  assert.equal(
    back.subarray(0, at).some((b) => b !== 0),
    false,
  );
  assert.equal(
    back.subarray(at + data.length).some((b) => b !== 0),
    false,
  );
});

test("an existing file is replaced whole, and a plain file copies byte for byte", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "wheellock-sparse-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "out");
  writeFileSync(path, randomBytes(3 * MiB));
  const data = randomBytes(MiB + 17);
  await pipeline(
    Readable.from([data.subarray(0, 5), data.subarray(5)]),
    createSparseWriteStream(path, 0o644),
  );
  assert.ok(readFileSync(path).equals(data));
});
