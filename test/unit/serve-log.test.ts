// `log --remote` reads a sandbox's ring log (vm.log.1, then vm.log) as local `log` does: the
// older segment first, and when following, every byte once across a rotation. Before the cursor,
// the node read only vm.log: the older segment was never shown and a rotation lost or repeated
// bytes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  formatLogCursor,
  LOG_START,
  parseLogCursor,
  readRingLog,
  type LogCursor,
} from "../../src/serve/log-slice.js";

const dir = mkdtempSync(join(tmpdir(), "wheellock-serve-log-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

/** Reads until nothing is new, in slices of `sliceBytes`, as `log --remote` does. */
function readAll(path: string, from: LogCursor, sliceBytes: number) {
  let cursor = from;
  let text = "";
  for (;;) {
    const slice = readRingLog(path, cursor, sliceBytes);
    cursor = slice.cursor;
    if (slice.data.length === 0) return { text, cursor };
    text += slice.data.toString();
  }
}

test("both segments are read, older first, in slices of any size", () => {
  const path = join(dir, "both.log");
  writeFileSync(`${path}.1`, "older-segment\n");
  writeFileSync(path, "current-segment\n");
  for (const slice of [1, 5, 1024 * 1024])
    assert.equal(readAll(path, LOG_START, slice).text, "older-segment\ncurrent-segment\n");
});

test("following across a rotation prints every byte once", () => {
  const path = join(dir, "follow.log");
  writeFileSync(`${path}.1`, "a\n");
  writeFileSync(path, "b\n");
  let read = readAll(path, LOG_START, 3);
  assert.equal(read.text, "a\nb\n");
  appendFileSync(path, "c\n");
  // The ring rotates: vm.log becomes vm.log.1, a new vm.log starts.
  renameSync(path, `${path}.1`);
  writeFileSync(path, "d\n");
  read = readAll(path, read.cursor, 3);
  assert.equal(read.text, "c\nd\n");
  appendFileSync(path, "e\n");
  assert.equal(readAll(path, read.cursor, 3).text, "e\n");
});

test("a cursor whose segment is gone starts from what is kept; no log reads nothing", () => {
  const path = join(dir, "gone.log");
  assert.deepEqual(readRingLog(path, LOG_START, 100), { data: Buffer.alloc(0), cursor: LOG_START });
  writeFileSync(path, "x\n");
  const stale = { ino: 1, offset: 999 };
  assert.equal(readAll(path, stale, 100).text, "x\n");
});

test("cursors travel as INO.OFFSET; anything else is refused", () => {
  assert.deepEqual(parseLogCursor(formatLogCursor({ ino: 42, offset: 7 })), { ino: 42, offset: 7 });
  for (const bad of ["", "1", "1.", ".1", "-1.0", "1.2.3", "1e3.0", "99999999999999999.0"])
    assert.equal(parseLogCursor(bad), undefined, bad);
});
