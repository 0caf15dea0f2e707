// The CLI's bundle is compiled with a V8 code cache kept in the cache dir (src/cli/code-cache.ts,
// issue 16). The cache is only an optimisation: a stale, corrupt, refused or unwritable cache
// must never change what runs, and a cache is only used for the exact bytes it was made from.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IMPORT_PARAM } from "../../src/cli/code-cache.js";

const source = (answer: number) =>
  `"use strict";\n` +
  `exports.answer = function answer() { return ${answer}; };\n` +
  // The bundle's import() after the build's rewrite: the loader's own.
  `exports.platform = async function platform() { return (await ${IMPORT_PARAM}("node:os")).platform(); };\n`;

const LOADER = join(import.meta.dirname, "../../src/cli/code-cache.ts");

interface Loaded {
  state: string;
  answer?: number;
  platform?: string;
  error?: string;
}

/**
 * One load in a fresh process, as the CLI does it (in one process V8's own in-memory
 * compilation cache would answer a second compile of the same source before the file cache).
 */
function loadInChild(file: string, cacheDir: string | undefined, tag = "run", save = true): Loaded {
  const script = `
    import { loadWithCodeCache } from ${JSON.stringify(LOADER)};
    let out;
    try {
      const l = loadWithCodeCache(${JSON.stringify(file)}, ${JSON.stringify(cacheDir)}, ${JSON.stringify(tag)});
      out = { state: l.state, answer: l.exports.answer(), platform: await l.exports.platform() };
      if (${save}) l.save();
    } catch (err) {
      out = { state: "threw", error: err.name };
    }
    process.stdout.write(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Loaded;
}

function setUp(t: { after(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), "wheellock-code-cache-"));
  const saved = process.env.WHEELLOCK_CACHE_DIR;
  // The stat memo of the bundle's hash goes under the cache dir too (children inherit it).
  process.env.WHEELLOCK_CACHE_DIR = join(dir, "cache");
  t.after(() => {
    if (saved === undefined) delete process.env.WHEELLOCK_CACHE_DIR;
    else process.env.WHEELLOCK_CACHE_DIR = saved;
    rmSync(dir, { recursive: true, force: true });
  });
  const file = join(dir, "bundle.cjs");
  writeFileSync(file, source(42));
  const cache = join(dir, "cache", "code");
  const load = (tag = "run", save = true) => loadInChild(file, cache, tag, save);
  const cacheFiles = () => readdirSync(cache).filter((f) => f.endsWith(".bin"));
  return { dir, file, cache, load, cacheFiles };
}

const ran = (state: string, answer = 42): Loaded => ({
  state,
  answer,
  platform: process.platform,
});

test("the first load compiles from source and saves; the next one uses the cache", (t) => {
  const { load, cacheFiles } = setUp(t);
  assert.deepEqual(load(), ran("miss"));
  assert.equal(cacheFiles().length, 1);
  // The module's own import() works from the cached code too.
  assert.deepEqual(load(), ran("hit"));
  // Each tag (command) keeps its own cache.
  assert.deepEqual(load("list"), ran("miss"));
  assert.equal(cacheFiles().length, 2);
});

test("a corrupt or truncated cache file is ignored, the module still runs, and the cache is rewritten", (t) => {
  const { load, cache, cacheFiles } = setUp(t);
  load();
  const path = join(cache, cacheFiles()[0]!);
  const good = readFileSync(path);
  // Bytes flipped in V8's payload, its length kept: V8 would not notice (release builds check
  // the payload's header, not its bytes).
  const flipped = Buffer.from(good);
  for (let i = good.length - 300; i < good.length - 100; i++) flipped[i] = flipped[i]! ^ 0xff;
  for (const bad of [flipped, good.subarray(0, good.length - 7), Buffer.from("not a cache")]) {
    writeFileSync(path, bad);
    assert.deepEqual(load(), ran("corrupt"));
    assert.deepEqual(load(), ran("hit"), "rewritten after a corrupt one");
  }
});

test("a cache V8 refuses (another V8 or flags) falls back to compiling from source", (t) => {
  const { load, cache, cacheFiles } = setUp(t);
  load();
  const path = join(cache, cacheFiles()[0]!);
  const good = readFileSync(path);
  // A well-formed file of ours (its checksum is right) whose payload V8 does not take.
  const magic = good.subarray(0, good.indexOf("\n") + 1);
  const payload = Buffer.alloc(4096, 7);
  writeFileSync(
    path,
    Buffer.concat([magic, createHash("sha256").update(payload).digest(), payload]),
  );
  assert.deepEqual(load(), ran("rejected"));
  assert.deepEqual(load(), ran("hit"));
});

test("the cache is keyed by the bundle's bytes: an edit that keeps size and mtime is not served stale code", (t) => {
  const { file, load } = setUp(t);
  load();
  assert.deepEqual(load(), ran("hit"));
  const { atime, mtime, size } = statSync(file);
  writeFileSync(file, source(43));
  utimesSync(file, atime, mtime);
  assert.equal(statSync(file).size, size);
  assert.deepEqual(load(), ran("miss", 43));
  assert.deepEqual(load(), ran("hit", 43));
});

test("an unwritable cache dir only means no cache", (t) => {
  const { dir, file } = setUp(t);
  // A file where the cache dir should be: nothing can be created under it.
  const blocked = join(dir, "blocked");
  writeFileSync(blocked, "");
  assert.deepEqual(loadInChild(file, join(blocked, "code")), ran("miss"));
  assert.deepEqual(loadInChild(file, join(blocked, "code")), ran("miss"));
});

test("no cache dir: compiled from source, nothing saved", (t) => {
  const { file } = setUp(t);
  assert.deepEqual(loadInChild(file, undefined), ran("off"));
});

test("a module that does not compile fails with its own error, cache or not", (t) => {
  const { file, load } = setUp(t);
  load();
  writeFileSync(file, "exports.answer = function ( {;\n");
  assert.deepEqual(load(), { state: "threw", error: "SyntaxError" });
});
