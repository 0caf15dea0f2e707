/**
 * Loads a CommonJS bundle with a V8 code cache kept on disk (issue 16: every CLI call pays for
 * compiling the CLI's JavaScript again, ~30 ms of a `run` here; docs/PERFORMANCE.md). Node 20
 * has no `module.enableCompileCache()`, so this does what it would: compile the bundle as a
 * `vm.Script` with the `cachedData` an earlier call saved, and after the command has run, save
 * the compiled code (the functions that call used, not only the top level) for the next one.
 *
 * The cache is only ever an optimisation. A cache file is named after a hash of the bundle's
 * bytes, the V8 version and the architecture, so another build or another Node never picks it
 * up (the bundle's SHA-256 is memoised by its stat identity, stat-memo.ts: hashing 1.5 MB
 * costs more than a millisecond a call, and any edit changes the identity). Its payload
 * carries its own SHA-256, so a truncated or corrupt file is ignored (V8 checks a payload's
 * version and length but, in release builds, not its bytes: a flipped byte can crash the
 * process, test/unit/code-cache.test.ts). V8 may still reject a cache (other V8 flags), and
 * then the bundle compiles from source as it would without one.
 * Saving never throws: an unwritable cache directory only means no cache.
 *
 * A `vm.Script` cannot `import()` on Node 20 without an experimental flag or an experimental
 * warning on stderr, so the build rewrites the bundle's `import(...)` expressions into calls of
 * IMPORT_PARAM, a parameter of the wrapper this loader compiles the bundle in: it is this
 * module's own `import()` (main.js, beside the bundle, resolves specifiers as the bundle would).
 */
import { createHash } from "node:crypto";
import { isAscii } from "node:buffer";
import { readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import vm from "node:vm";
import { makePrivateDir } from "../paths.js";
import { filesIdentity, readStatMemo, writeStatMemo } from "../stat-memo.js";

/** How a load went: compiled from a cache, or why not. */
export type CodeCacheState =
  | "hit"
  /** No cache file for this bundle yet. */
  | "miss"
  /** The file did not pass its own checksum (truncated, corrupt, not ours). */
  | "corrupt"
  /** V8 refused it (a different V8 build or flags). */
  | "rejected"
  /** No cache directory given: compiled from source, nothing saved. */
  | "off";

export interface CodeCacheLoad<T> {
  readonly exports: T;
  readonly state: CodeCacheState;
  /**
   * Writes the cache for the next load if this one compiled from source; call it once the
   * work is done, so the cache holds the code it compiled. Never throws.
   */
  save(): void;
}

/** File format: MAGIC, the SHA-256 of the payload, the payload (V8's cached data). */
const MAGIC = Buffer.from("wheellock-v8-code-cache-1\n");
const DIGEST_BYTES = 32;
/** Another build's cache files are removed once they have not been written for this long. */
const STALE_MS = 7 * 24 * 60 * 60 * 1000;
/**
 * The name the build gives the bundle's `import()` (scripts/bundle-cli.mjs has the same; its
 * length is import's, so the source map's columns still hold).
 */
export const IMPORT_PARAM = "$wlImp";
const WRAPPER_HEAD = `(function (exports, require, module, __filename, __dirname, ${IMPORT_PARAM}) {`;
const WRAPPER_TAIL = "\n})";

function sha256(...parts: (string | Buffer)[]): Buffer {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/** The SHA-256 of `file`'s bytes (`bytes`), memoised by the file's stat identity. */
function contentHash(file: string, bytes: Buffer): string {
  const identity = filesIdentity([file]);
  const known = identity === undefined ? undefined : readStatMemo("code-cache", identity);
  if (known !== undefined) return known;
  const hash = sha256(bytes).toString("hex");
  if (identity !== undefined) writeStatMemo("code-cache", identity, hash);
  return hash;
}

/** The cache file's name: the bundle's content, this V8 and this architecture, and the tag. */
function codeCacheFileName(file: string, bytes: Buffer, tag: string): string {
  const key = sha256(contentHash(file, bytes), `\0${process.versions.v8}\0${process.arch}`)
    .toString("hex")
    .slice(0, 32);
  return `${key}-${tag.replace(/[^a-z0-9-]/g, "_").slice(0, 40)}.bin`;
}

/** The payload of a cache file, or undefined when there is none or it fails its checksum. */
function readCache(path: string): { data?: Buffer; state: "miss" | "corrupt" } {
  let file: Buffer;
  try {
    file = readFileSync(path);
  } catch {
    return { state: "miss" };
  }
  const head = MAGIC.length + DIGEST_BYTES;
  if (file.length <= head || !file.subarray(0, MAGIC.length).equals(MAGIC))
    return { state: "corrupt" };
  const data = file.subarray(head);
  if (!sha256(data).equals(file.subarray(MAGIC.length, head))) return { state: "corrupt" };
  return { data, state: "miss" };
}

function writeCache(dir: string, name: string, data: Buffer): void {
  makePrivateDir(dir);
  const path = join(dir, name);
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, Buffer.concat([MAGIC, sha256(data), data]), { mode: 0o600 });
    // A rename: a concurrent load reads the old file or the new one, never half of one.
    renameSync(temporary, path);
  } finally {
    rmSync(temporary, { force: true });
  }
  const key = name.slice(0, name.indexOf("-"));
  for (const other of readdirSync(dir)) {
    if (other.startsWith(key)) continue;
    const otherPath = join(dir, other);
    if (Date.now() - statSync(otherPath).mtimeMs > STALE_MS) rmSync(otherPath, { force: true });
  }
}

/**
 * Loads the CommonJS module `file` (a self-contained bundle: its own requires resolve from its
 * folder, its `import()`s are IMPORT_PARAM's), with the code cache in `cacheDir` (undefined:
 * none). `tag` names the cache within the bundle's: each command compiles different functions,
 * so each keeps its own.
 */
export function loadWithCodeCache<T>(
  file: string,
  cacheDir: string | undefined,
  tag: string,
): CodeCacheLoad<T> {
  const bytes = readFileSync(file);
  // The build keeps the bundle ASCII (latin1 then decodes it as UTF-8 would, several times faster).
  const source = bytes.toString(isAscii(bytes) ? "latin1" : "utf8");
  const name = cacheDir === undefined ? undefined : codeCacheFileName(file, bytes, tag);
  const cached: { data?: Buffer; state: CodeCacheState } =
    cacheDir === undefined || name === undefined
      ? { state: "off" }
      : readCache(join(cacheDir, name));
  const compile = (cachedData: Buffer | undefined) =>
    new vm.Script(WRAPPER_HEAD + source + WRAPPER_TAIL, { filename: file, cachedData });
  let script: vm.Script;
  let state: CodeCacheState = cached.state;
  try {
    script = compile(cached.data);
    if (cached.data) state = script.cachedDataRejected === true ? "rejected" : "hit";
  } catch (err) {
    // Not the cache's doing if it fails without one too: then that error is the one to see.
    if (cached.data === undefined) throw err;
    script = compile(undefined);
    state = "rejected";
  }
  const mod = { exports: {} as T };
  const wrapper = script.runInThisContext() as (
    exports: T,
    require: NodeJS.Require,
    module: { exports: T },
    filename: string,
    dirname: string,
    importer: (specifier: string) => Promise<unknown>,
  ) => void;
  const importer = (specifier: string): Promise<unknown> => import(specifier);
  wrapper.call(mod.exports, mod.exports, createRequire(file), mod, file, dirname(file), importer);
  let saved = state !== "miss" && state !== "corrupt" && state !== "rejected";
  return {
    exports: mod.exports,
    state,
    save: () => {
      if (saved || cacheDir === undefined || name === undefined) return;
      saved = true;
      try {
        writeCache(cacheDir, name, script.createCachedData());
      } catch {
        // No cache next time; nothing else changes.
      }
    },
  };
}
