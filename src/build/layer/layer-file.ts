/**
 * Writes a layer: entries -> tar (its sha256 is the diff ID) -> gzip (its sha256 is the blob
 * digest) -> a content-addressed blob, while every uncompressed byte is scanned for secrets.
 * The blob appears under its digest only when complete; on any failure nothing is left.
 */
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { constants, createGzip } from "node:zlib";
import { ErrBuild } from "../../errors.js";
import { orderLayerEntries, type LayerEntry } from "./entry.js";
import { NeedleScanner, type Needle } from "./scanner.js";
import { writeLayerTar } from "./tar-writer.js";

export const LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip";

export interface WrittenLayer {
  /** sha256 of the gzip blob. */
  digest: string;
  /** sha256 of the uncompressed tar. */
  diffId: string;
  sizeBytes: number;
  uncompressedBytes: number;
}

export interface WriteLayerOptions {
  /** `<dir>/sha256/<hex>` receives the blob. */
  blobDir: string;
  /** Byte strings that must not be in the layer. */
  needles: readonly Needle[];
  /** What the layer is, for errors ("step 4 (RUN make)"). */
  what: string;
  /** Refuse layers bigger than this (uncompressed; sparse files count in full). */
  maxBytes: number;
}

function meter(onChunk: (c: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      try {
        onChunk(chunk);
        done(null, chunk);
      } catch (err) {
        done(err as Error);
      }
    },
  });
}

export async function writeLayer(
  entries: readonly LayerEntry[],
  opts: WriteLayerOptions,
): Promise<WrittenLayer> {
  const dir = join(opts.blobDir, "sha256");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `layer.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  const diffHash = createHash("sha256");
  const blobHash = createHash("sha256");
  const scanner = new NeedleScanner(opts.needles);
  let uncompressedBytes = 0;
  let sizeBytes = 0;
  try {
    const ordered = orderLayerEntries(entries);
    // Names are scanned whole too: ustar splits a long path into prefix and name fields at a
    // '/', which can fall inside a secret (its halves then lie apart in the tar bytes).
    for (const e of ordered) {
      const names = new NeedleScanner(opts.needles);
      names.push(Buffer.from(`${e.path}\0${e.linkTarget ?? ""}`));
      if (names.found !== undefined)
        throw new ErrBuild(
          `${opts.what}: the layer would contain ${names.found} (in a file name); refused (nothing was stored)`,
        );
    }
    await pipeline(
      Readable.from(writeLayerTar(ordered)),
      meter((c) => {
        uncompressedBytes += c.length;
        if (uncompressedBytes > opts.maxBytes)
          throw new ErrBuild(
            `${opts.what}: the layer is larger than ${opts.maxBytes} bytes (sparse files count in full); refused`,
          );
        diffHash.update(c);
        scanner.push(c);
        if (scanner.found !== undefined)
          throw new ErrBuild(
            `${opts.what}: the layer would contain ${scanner.found}; refused (nothing was stored)`,
          );
      }),
      // Fixed level and header: the same tar always gives the same blob (per zlib version).
      createGzip({ level: constants.Z_DEFAULT_COMPRESSION }),
      meter((c) => {
        sizeBytes += c.length;
        blobHash.update(c);
      }),
      createWriteStream(tmp, { mode: 0o644 }),
    );
    const hex = blobHash.digest("hex");
    const final = join(dir, hex);
    if ((await stat(final).catch(() => undefined))?.size === sizeBytes) await rm(tmp);
    else await rename(tmp, final);
    return {
      digest: `sha256:${hex}`,
      diffId: `sha256:${diffHash.digest("hex")}`,
      sizeBytes,
      uncompressedBytes,
    };
  } finally {
    await rm(tmp, { force: true });
  }
}
