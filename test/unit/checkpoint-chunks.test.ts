// The chunk store's objects as files an attacker with the store's user could plant: a copy's
// start reads at most a chunk from a regular file, and a save never writes through a link.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { execFileSync } from "node:child_process";
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

/** The store's prefix directory of `digest` replaced by a symlink to `target`. */
function plantPrefix(store: ChunkStore, digest: string, target: string): string {
  const prefix = join(store.dir, digest.slice(0, 2));
  rmSync(prefix, { recursive: true, force: true });
  symlinkSync(target, prefix);
  return prefix;
}

test("attack: a sweep never deletes through a prefix directory planted as a symlink", async () => {
  const { store, file } = await storeOfOne("sweep-link");
  const digest = file.chunks[0] as string;
  const victim = join(scratch, "sweep-victim");
  mkdirSync(victim);
  writeFileSync(join(victim, "precious.txt"), "keep me\n");
  plantPrefix(store, digest, victim);
  assert.throws(() => store.sweep(new Set([digest])), changedOnDisk(/is a symlink or not a/));
  assert.equal(readFileSync(join(victim, "precious.txt"), "utf8"), "keep me\n");
});

test("attack: a save never writes a chunk into a prefix directory planted as a symlink", async () => {
  const store = new ChunkStore(join(scratch, "put-link", "objects"));
  const data = randomBytes(CHUNK_BYTES);
  const digest = createHash("sha256").update(data).digest("hex");
  const victim = join(scratch, "put-victim");
  mkdirSync(victim);
  mkdirSync(store.dir, { recursive: true });
  plantPrefix(store, digest, victim);
  const source = join(scratch, "put-link.img");
  writeFileSync(source, data);
  await assert.rejects(store.ingest(source, false), changedOnDisk(/chunk store: .* is a symlink/));
  assert.deepEqual(readdirSync(victim), []);
  // Nor reads one from there: a copy of the chunk planted beside it is refused too.
  writeFileSync(join(victim, digest), data);
  await assert.rejects(
    store.materialize({ sizeBytes: CHUNK_BYTES, chunks: [digest] }, join(scratch, "put-out.img")),
    changedOnDisk(/is a symlink or not a directory: refused/),
  );
});

test("attack: an object planted as a FIFO is refused at once, not waited on", async () => {
  const { store, object, file } = await storeOfOne("fifo");
  rmSync(object);
  execFileSync("mkfifo", [object]);
  const outcome = await Promise.race([
    store.materialize(file, join(scratch, "fifo-out.img")).then(
      () => "read",
      (err: Error) => err.message,
    ),
    new Promise<string>((r) => setTimeout(() => r("still waiting after 3 s"), 3000).unref()),
  ]);
  assert.match(outcome, /not a regular file/);
});
