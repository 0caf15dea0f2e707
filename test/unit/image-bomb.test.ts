/**
 * Decompression bombs in image layers: a gzip or zstd layer of a few megabytes standing for
 * 10 GiB must be refused quickly, with bounded memory and disk, one ErrImage line and no temp
 * files, on import and on pull; a highly compressible layer within the limits still imports.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, test } from "node:test";
import { ErrImage } from "../../src/errors.js";
import { ImageStore, importImage, pullImage } from "../../src/image/index.js";
import { isDiskFull } from "../../src/image/disk-full.js";
import {
  DEFAULT_LAYER_LIMITS,
  DecompressedBytesCap,
  layerBudget,
} from "../../src/image/layer-limits.js";
import { gzipBomb, tarFileHeader, zstdBomb } from "../helpers/bombs.js";
import { statIn } from "../helpers/ext4-inspect.js";
import { cpuMsSince } from "../helpers/timing.js";
import {
  assembleImage,
  buildImage,
  layerTar,
  ociLayoutTar,
  sha256,
  type BuiltImage,
} from "../helpers/oci-build.js";

const GIB = 2 ** 30;
const work = mkdtempSync(join(tmpdir(), "wl-bomb-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** A layer whose diff_id nobody can know without decompressing it: the bomb is refused first. */
function bombImage(blob: Buffer, mediaType: string): BuiltImage {
  return assembleImage([
    { blob, digest: sha256(blob), diffId: sha256(Buffer.from("never reached")), mediaType },
  ]);
}

/** Scratch a failed flattening could leave: build dirs, temp blobs, half-written ext4. */
function scratchLeft(dir: string): string[] {
  const all = readdirSync(dir, { recursive: true, encoding: "utf8" });
  return all.filter((p) => /\.tmp-|(^|\/)build-|\.ext4$/.test(p));
}

/**
 * Runs an import that must be refused at the layer limit (256 MiB for these bombs), not after
 * decompressing its 10 GiB. "Quickly" is measured in this process's CPU time: it decompresses
 * (gzip) or reads and hashes (zstd, decompressed by a child) every byte, so 40 times the limit
 * would cost 40 times the CPU. Wall time is no measure on a loaded machine: CI at load 25 took
 * 38 s of wall time for a refusal that costs about a second of CPU.
 */
async function refusedQuickly(run: () => Promise<unknown>, store: ImageStore): Promise<Error> {
  const rssBefore = process.memoryUsage().rss;
  const cpuBefore = process.cpuUsage();
  let peakRss = rssBefore;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
  let error: Error | undefined;
  try {
    await run();
  } catch (err) {
    error = err as Error;
  } finally {
    clearInterval(sampler);
  }
  const cpuSeconds = cpuMsSince(cpuBefore) / 1000;
  assert.ok(error, "the bomb was imported");
  assert.ok(cpuSeconds < 20, `took ${cpuSeconds} s of CPU`);
  assert.ok(
    peakRss - rssBefore < 256 * 2 ** 20,
    `RSS grew by ${(peakRss - rssBefore) / 2 ** 20} MiB`,
  );
  assert.deepEqual(scratchLeft(store.root), []);
  assert.deepEqual(await store.list(), []);
  return error;
}

test("a gzip bomb (10 GiB of zeros in one file, ~10 MB) is refused on import", async () => {
  const blob = gzipBomb(await tarFileHeader("zero", 10 * GIB), 10 * 1024);
  const img = bombImage(blob, "application/vnd.oci.image.layer.v1.tar+gzip");
  const store = new ImageStore(join(work, "gzip"));
  const source = Readable.from([await ociLayoutTar(img)]);
  const err = await refusedQuickly(() => importImage("bomb:gzip", { store, source }), store);
  assert.ok(err instanceof ErrImage, String(err));
  assert.match(
    err.message,
    /^layer sha256:[0-9a-f]{64} decompresses to more than \d+ MiB .*decompression bomb$/,
  );
  assert.equal(err.message.split("\n").length, 1);
});

test("a zstd bomb (10 GiB of zeros after the archive's end, ~300 KB) is refused on import", async () => {
  // All zeros: a tar reader sees the end of the archive at once; the rest is only hashed
  // (it counts towards the diff_id), so it is the decompressed byte count that must stop it.
  const blob = zstdBomb(Buffer.alloc(0), 10 * 1024);
  const img = bombImage(blob, "application/vnd.oci.image.layer.v1.tar+zstd");
  const store = new ImageStore(join(work, "zstd"));
  const source = Readable.from([await ociLayoutTar(img)]);
  const err = await refusedQuickly(() => importImage("bomb:zstd", { store, source }), store);
  assert.ok(err instanceof ErrImage, String(err));
  assert.match(err.message, /decompression bomb/);
});

let server: Server | undefined;
let registry = "";
const served = new Map<string, BuiltImage>();
before(async () => {
  server = createServer((req, res) => {
    const m = /^\/v2\/([a-z]+)\/(manifests|blobs)\/(.+)$/.exec(req.url ?? "");
    const img = m?.[1] ? served.get(m[1]) : undefined;
    if (!m || !img) return void res.writeHead(404).end();
    if (m[2] === "manifests") {
      res.setHeader("content-type", img.manifestMediaType);
      return void res.end(img.manifest);
    }
    const blob =
      m[3] === img.configDigest ? img.config : img.layers.find((l) => l.digest === m[3])?.blob;
    res.writeHead(blob ? 200 : 404).end(blob);
  });
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  registry = `127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
});
after(() => server?.close());

test("a gzip bomb is refused on pull from a registry too", async () => {
  const blob = gzipBomb(await tarFileHeader("zero", 10 * GIB), 10 * 1024);
  served.set("bomb", bombImage(blob, "application/vnd.oci.image.layer.v1.tar+gzip"));
  const store = new ImageStore(join(work, "pull"));
  const err = await refusedQuickly(() => pullImage(`${registry}/bomb:v1`, { store }), store);
  assert.ok(err instanceof ErrImage, String(err));
  assert.match(err.message, /decompression bomb/);
});

test("a highly compressible layer within the limits imports", async () => {
  // 64 MiB of zeros gzip to ~64 KB (ratio ~1000): small layers may exceed the ratio.
  const tar = await layerTar([
    { name: "zeros", content: Buffer.alloc(64 * 2 ** 20) },
    { name: "text", content: "wheellock\n".repeat(100_000) },
  ]);
  const img = buildImage([tar]);
  assert.ok(img.layers[0]!.blob.length * DEFAULT_LAYER_LIMITS.ratio < 64 * 2 ** 20);
  const store = new ImageStore(join(work, "legit"));
  const rec = await importImage("legit:1", {
    store,
    source: Readable.from([await ociLayoutTar(img)]),
  });
  assert.equal(statIn(store.ext4Path(rec), "/zeros")?.sizeBytes, 64 * 2 ** 20);
});

test("the budget: the ratio above the floor, free disk space as the hard cap", () => {
  const limits = { ratio: 100, floorBytes: 256 * 2 ** 20 };
  assert.deepEqual(layerBudget(1000, 100 * GIB, limits), {
    limitBytes: 256 * 2 ** 20,
    what: "ratio",
  });
  assert.deepEqual(layerBudget(10 * 2 ** 20, 100 * GIB, limits), {
    limitBytes: 1000 * 2 ** 20,
    what: "ratio",
  });
  assert.deepEqual(layerBudget(10 * 2 ** 20, 2 ** 20, limits), {
    limitBytes: 2 ** 20,
    what: "disk",
  });
  // Past the free space is a full disk, reported by the store's one "no space left" line.
  const cap = new DecompressedBytesCap({ limitBytes: 2 ** 20, what: "disk" }, "sha256:x", 10);
  assert.throws(
    () => cap.reserve(2 ** 20 + 1),
    (err: unknown) => isDiskFull(err) && !(err instanceof ErrImage),
  );
  assert.doesNotThrow(() => cap.reserve(2 ** 20));
});
