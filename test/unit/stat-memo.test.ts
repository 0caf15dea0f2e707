// The agent's source hash is needed on every sandbox start; it is memoised by the files' stat
// identity (issue 16), which must never hand back the hash of sources that changed since.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { agentSourceHash } from "../../src/setup/agent.js";

function directHash(files: Record<string, string>): string {
  const hash = createHash("sha256");
  for (const name of Object.keys(files).sort()) {
    hash.update(`${name}\0${Buffer.byteLength(files[name]!)}\0`);
    hash.update(files[name]!);
  }
  return hash.digest("hex");
}

/** A scratch dir whose `cache` subdir is the cache dir until the test ends. */
function scratchWithOwnCache(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "wheellock-statmemo-"));
  const saved = process.env.WHEELLOCK_CACHE_DIR;
  t.after(() => {
    if (saved === undefined) delete process.env.WHEELLOCK_CACHE_DIR;
    else process.env.WHEELLOCK_CACHE_DIR = saved;
    rmSync(dir, { recursive: true, force: true });
  });
  process.env.WHEELLOCK_CACHE_DIR = join(dir, "cache");
  return dir;
}

test("the agent source hash is memoised, and changes with any edit, even one that keeps size and mtime", async (t) => {
  const dir = scratchWithOwnCache(t);
  const guest = join(dir, "guest");
  mkdirSync(guest);
  const files: Record<string, string> = { Makefile: "all:\n", "main.c": "int main(){return 0;}\n" };
  for (const [name, text] of Object.entries({ ...files, "notes.txt": "not a source" }))
    writeFileSync(join(guest, name), text);

  const first = await agentSourceHash(guest);
  assert.equal(first, directHash(files));
  assert.ok(readdirSync(join(dir, "cache", "memo")).length > 0, "the hash is kept on disk");
  assert.equal(await agentSourceHash(guest), first, "answered again from the memo");

  // Same size, mtime put back: only the ctime and the content say it changed.
  const main = join(guest, "main.c");
  const before = statSync(main, { bigint: true });
  files["main.c"] = "int main(){return 1;}\n";
  writeFileSync(main, files["main.c"]);
  // To the nanosecond (Node's utimes takes a double): touch does.
  const ns = before.mtimeNs;
  const stamp = `@${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, "0")}`;
  execFileSync("touch", ["-m", "-d", stamp, main]);
  const after = statSync(main, { bigint: true });
  assert.equal(after.size, before.size);
  assert.equal(after.mtimeNs, before.mtimeNs);
  assert.equal(await agentSourceHash(guest), directHash(files));

  // A new source file counts too.
  files["extra.h"] = "#define X 1\n";
  writeFileSync(join(guest, "extra.h"), files["extra.h"]);
  assert.equal(await agentSourceHash(guest), directHash(files));
});

test("two checkouts keep a memo each: alternating between them does not hash again", async (t) => {
  const dir = scratchWithOwnCache(t);
  const guests = ["a", "b"].map((name) => {
    const guest = join(dir, name, "guest");
    mkdirSync(guest, { recursive: true });
    writeFileSync(join(guest, "main.c"), `/* ${name} */\n`);
    return guest;
  });
  for (const guest of guests) await agentSourceHash(guest);
  const memoDir = join(dir, "cache", "memo");
  const written = new Map(
    readdirSync(memoDir).map((f) => [f, statSync(join(memoDir, f), { bigint: true }).ctimeNs]),
  );
  assert.equal(written.size, 2, "one memo per checkout");
  for (const guest of guests) await agentSourceHash(guest);
  for (const [file, ctime] of written)
    assert.equal(
      statSync(join(memoDir, file), { bigint: true }).ctimeNs,
      ctime,
      `${file} was not rewritten`,
    );
});
