/**
 * Decompression bombs for the image tests, built in memory in a few hundred milliseconds
 * instead of by compressing gigabytes: compressed blocks of zeros repeated.
 */
import { execFileSync } from "node:child_process";
import { constants, deflateRawSync } from "node:zlib";
import { pack } from "tar-stream";

const MIB = 1024 * 1024;

/** The 512-byte tar header of one regular file of `sizeBytes` (base-256 size past 8 GiB). */
export async function tarFileHeader(name: string, sizeBytes: number): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on("data", (c: unknown) => chunks.push(c as Buffer));
  const entry = p.entry({ name, size: sizeBytes, mode: 0o644, mtime: new Date(0) });
  entry.on("error", () => undefined);
  entry.write(Buffer.alloc(1));
  await new Promise((resolve) => setImmediate(resolve));
  return Buffer.concat(chunks).subarray(0, 512);
}

/**
 * gzip of `prefix` then `zeroMiB` MiB of zeros. Each deflate segment ends with a full flush,
 * so identical segments can be repeated; the trailer (CRC, size) is left zero: a bomb does
 * not have to be valid to its end, it has to be refused long before it.
 */
export function gzipBomb(prefix: Buffer, zeroMiB: number): Buffer {
  const flush = { finishFlush: constants.Z_FULL_FLUSH, level: 9 };
  const zeros = deflateRawSync(Buffer.alloc(MIB), flush);
  return Buffer.concat([
    Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]),
    deflateRawSync(prefix, flush),
    ...Array.from({ length: zeroMiB }, () => zeros),
    deflateRawSync(Buffer.alloc(0)),
    Buffer.alloc(8),
  ]);
}

/** zstd frames (decoded as one stream): `prefix`, then `zeroMiB` MiB of zeros. */
export function zstdBomb(prefix: Buffer, zeroMiB: number): Buffer {
  const zstd = (input: Buffer): Buffer => execFileSync("zstd", ["-c", "-q"], { input });
  const frameMiB = 64;
  const zeros = zstd(Buffer.alloc(frameMiB * MIB));
  const frames = Math.ceil(zeroMiB / frameMiB);
  return Buffer.concat([
    ...(prefix.length > 0 ? [zstd(prefix)] : []),
    ...Array.from({ length: frames }, () => zeros),
  ]);
}
