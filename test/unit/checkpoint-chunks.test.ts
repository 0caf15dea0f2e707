// The chunk store's objects as files an attacker with the store's user could plant: a copy's
// start reads at most a chunk from a regular file, and a save never writes through a link.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrSnapshotMismatch } from "../../src/errors.js";
import { CHUNK_BYTES, ChunkStore } from "../../src/sandbox/checkpoint-chunks.js";

const scratch = mkdtempSync(join(tmpdir(), "wheellock-chunks-"));
process.on("exit", () => rmSync(scratch, { recursive: true, force: true }));

/** A store holding one file of one chunk: the store, its object's path and the file. */
async function storeOfOne(name: string) {
  const store = new ChunkStore(join(scratch, name, "objects"));
  const source = join(scratch, `${name}.img`);
  writeFileSync(source, randomBytes(CHUNK_BYTES));
  const { file } = await store.ingest(source, false);
  return { store, object: store.objectPath(file.chunks[0] as string), file };
}

function changedOnDisk(pattern: RegExp) {
  return (err: Error) => {
    assert.ok(err instanceof ErrSnapshotMismatch, String(err));
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes("\n"), "one line");
    return true;
  };
}

test("an object planted as a symlink to /dev/zero is refused at once, not read without end", async () => {
  const { store, object, file } = await storeOfOne("zero");
  rmSync(object);
  symlinkSync("/dev/zero", object);
  const started = Date.now();
  await assert.rejects(
    store.materialize(file, join(scratch, "zero-out.img")),
    changedOnDisk(/was changed on disk \(a symlink\)/),
  );
  assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
});

test("an object over a chunk's size is refused before it is read whole", async () => {
  const { store, object, file } = await storeOfOne("big");
  writeFileSync(object, Buffer.alloc(CHUNK_BYTES + 4096, 1));
  await assert.rejects(
    store.materialize(file, join(scratch, "big-out.img")),
    changedOnDisk(/was changed on disk \(\d+ bytes, over a chunk's/),
  );
  // A device node (or anything not a regular file) is refused too.
  rmSync(object);
  mkdirSync(object);
  await assert.rejects(
    store.materialize(file, join(scratch, "dir-out.img")),
    changedOnDisk(/not a regular file/),
  );
});

test("a save never writes through a symlink planted at its temp name", async () => {
  const store = new ChunkStore(join(scratch, "tmp-link", "objects"));
  const victim = join(scratch, "victim");
  writeFileSync(victim, "do not overwrite\n");
  const data = randomBytes(CHUNK_BYTES);
  const digest = createHash("sha256").update(data).digest("hex");
  const object = store.objectPath(digest);
  mkdirSync(join(object, ".."), { recursive: true });
  symlinkSync(victim, `${object}.tmp-${process.pid}`);
  const source = join(scratch, "tmp-link.img");
  writeFileSync(source, data);
  const { file } = await store.ingest(source, false);
  assert.equal(readFileSync(victim, "utf8"), "do not overwrite\n");
  assert.ok(lstatSync(object).isFile(), "the object is a file of its own");
  assert.deepEqual(readFileSync(object), data);
  const out = join(scratch, "tmp-link-out.img");
  await store.materialize(file, out);
  assert.deepEqual(readFileSync(out), data);
});
