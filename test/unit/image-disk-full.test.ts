// A pull into a cache on a full filesystem: one clear line, no temp files, no record that could
// later look complete, and the next pull with room succeeds. Needs root to mount a small tmpfs.
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { buildImage, layerTar, type BuiltImage } from "../helpers/oci-build.js";

const isRoot = (process.getuid?.() ?? 1) === 0;
const skip = isRoot ? false : "needs root to mount a small tmpfs as the full cache filesystem";
const CLI = ["--import", "tsx", join(import.meta.dirname, "../../src/cli/main.ts")];
const work = mkdtempSync(join(tmpdir(), "wl-diskfull-"));
const images = new Map<string, BuiltImage>();
let server: Server | undefined;
let host = "";

before(async () => {
  if (!isRoot) return;
  // "big": the compressed layer itself (12 MB of random bytes) overflows 8 MiB while downloading.
  images.set(
    "big",
    buildImage(
      [await layerTar([{ name: "r", content: randomBytes(12 << 20) }])],
      {},
      {
        gzip: false,
      },
    ),
  );
  // "fat": 20 MB of zeros gzip to a few KB, so the download fits and flattening overflows.
  images.set("fat", buildImage([await layerTar([{ name: "z", content: Buffer.alloc(20 << 20) }])]));
  // "mid": 3 MB of random bytes, stored once as a blob and once in the staging tree, fits;
  // the third copy, mkfs.ext4 writing the image, is what overflows.
  images.set(
    "mid",
    buildImage(
      [await layerTar([{ name: "m", content: randomBytes(3 << 20) }])],
      {},
      {
        gzip: false,
      },
    ),
  );
  server = createServer((req, res) => {
    const m = /^\/v2\/([a-z]+)\/(manifests|blobs)\/(.+)$/.exec(req.url ?? "");
    const img = m?.[1] ? images.get(m[1]) : undefined;
    if (!m || !img) {
      res.statusCode = 404;
      return res.end();
    }
    if (m[2] === "manifests") {
      res.setHeader("content-type", img.manifestMediaType);
      return res.end(img.manifest);
    }
    const blob =
      m[3] === img.configDigest ? img.config : img.layers.find((l) => l.digest === m[3])?.blob;
    res.statusCode = blob ? 200 : 404;
    res.end(blob);
  });
  await new Promise<void>((r) => server?.listen(0, "127.0.0.1", r));
  const addr = server.address();
  host = `127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
});

after(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  rmSync(work, { recursive: true, force: true });
});

/** Async, not spawnSync: the fake registry lives in this process and must keep answering. */
function wheellock(
  cache: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...CLI, ...args],
      {
        encoding: "utf8",
        env: { ...process.env, WHEELLOCK_CACHE_DIR: cache, WHEELLOCK_DATA_DIR: join(work, "data") },
        timeout: 120_000,
      },
      (err, stdout, stderr) =>
        resolve({
          code: err ? (typeof err.code === "number" ? err.code : null) : 0,
          stdout,
          stderr,
        }),
    );
  });
}

/** Every path under `dir` that looks like scratch: temp blobs, flattening dirs, locks. */
function scratchLeft(dir: string): string[] {
  const all = readdirSync(dir, { recursive: true, encoding: "utf8" });
  return all.filter((p) => /\.tmp-|(^|\/)build-|\.lock$|\.ext4$/.test(p));
}

function mount(dir: string, opts: string): void {
  const r = spawnSync("mount", ["-t", "tmpfs", "-o", opts, "tmpfs", dir], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
}

for (const name of ["big", "fat", "mid"]) {
  test(
    `pull of "${name}" into a full cache fails in one line and leaves nothing`,
    { skip },
    async () => {
      const cache = join(work, name);
      mkdirSync(cache);
      mount(cache, "size=8m");
      try {
        const ref = `${host}/${name}:v1`;
        const failed = await wheellock(cache, ["pull", ref]);
        assert.equal(failed.code, 1, failed.stderr);
        assert.match(
          failed.stderr,
          /^wheellock: no space left on device: pulling \S+ does not fit/,
        );
        assert.equal(failed.stderr.trim().split("\n").length, 1, failed.stderr);
        assert.deepEqual(scratchLeft(cache), []);
        const ls = await wheellock(cache, ["image", "ls"]);
        assert.equal(ls.code, 0, ls.stderr);
        assert.doesNotMatch(ls.stdout, new RegExp(name));
        // The same cache, now roomy: what the failed pull kept does not get in the way.
        const re = spawnSync("mount", ["-o", "remount,size=96m", cache], { encoding: "utf8" });
        assert.equal(re.status, 0, re.stderr);
        const ok = await wheellock(cache, ["pull", ref]);
        assert.equal(ok.code, 0, ok.stderr);
        const ls2 = await wheellock(cache, ["image", "ls"]);
        assert.match(ls2.stdout, new RegExp(`${name}\\s+v1`));
      } finally {
        spawnSync("umount", [cache]);
      }
    },
  );
}
