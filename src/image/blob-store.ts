import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ErrImage } from "../errors.js";
import { makePrivateDir } from "../paths.js";
import { DigestMeter } from "./digest-meter.js";

const DIGEST = /^sha256:([a-f0-9]{64})$/;

export function digestHex(digest: string): string {
  const m = DIGEST.exec(digest);
  if (!m?.[1]) throw new ErrImage(`unsupported digest "${digest}" (only sha256)`);
  return m[1];
}

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/**
 * Content-addressed blobs (`<root>/sha256/<hex>`), shared by every image. A blob only ever
 * appears under its final name after its bytes were hashed and matched the digest (write to a
 * temp name, verify, rename), so a crash or a full disk leaves at most a `.tmp-*` file that
 * `prune` removes.
 */
export class BlobStore {
  constructor(readonly root: string) {}

  path(digest: string): string {
    return join(this.root, "sha256", digestHex(digest));
  }

  async has(digest: string, sizeBytes?: number): Promise<boolean> {
    try {
      const st = await stat(this.path(digest));
      return sizeBytes === undefined || st.size === sizeBytes;
    } catch {
      return false;
    }
  }

  read(digest: string): Promise<Buffer> {
    return readFile(this.path(digest));
  }

  /** Stores bytes already in memory (manifests, configs), verifying them. */
  async putBuffer(digest: string, data: Buffer): Promise<void> {
    const got = sha256Digest(data);
    if (got !== digest) throw new ErrImage(`digest mismatch: expected ${digest}, got ${got}`);
    if (await this.has(digest, data.length)) return;
    await this.write(digest, (tmp) => writeFile(tmp, data, { mode: 0o644 }));
  }

  /**
   * Streams `source` into the store, hashing as it goes. On a digest or size mismatch the
   * bytes are discarded and the error names both digests.
   */
  async putStream(
    digest: string,
    /**
     * Opened only once the temp file is ready and consumed at once: a stream created earlier
     * could error (a connection reset) while nobody listens, which Node treats as uncaught.
     */
    openSource: () => Readable,
    opts: { expectedSize?: number; onBytes?: (n: number) => void } = {},
  ): Promise<void> {
    await this.write(digest, async (tmp) => {
      const meter = new DigestMeter((size, chunk) => {
        if (opts.expectedSize !== undefined && size > opts.expectedSize)
          return new ErrImage(
            `blob ${digest} is larger than its descriptor says (${opts.expectedSize} bytes); discarded`,
          );
        opts.onBytes?.(chunk.length);
      });
      await pipeline(openSource(), meter, createWriteStream(tmp, { mode: 0o644 }));
      const got = meter.digest();
      if (got !== digest)
        throw new ErrImage(`digest mismatch for blob ${digest}: got ${got}; discarded`);
      if (opts.expectedSize !== undefined && meter.sizeBytes !== opts.expectedSize)
        throw new ErrImage(
          `blob ${digest} is ${meter.sizeBytes} bytes, descriptor says ${opts.expectedSize}; discarded`,
        );
    });
  }

  /** Stores a stream of unknown digest (archive members), named by the digest it hashes to. */
  async putAny(source: AsyncIterable<Buffer>): Promise<{ digest: string; sizeBytes: number }> {
    makePrivateDir(join(this.root, "sha256"));
    const tmp = join(
      this.root,
      "sha256",
      `import.tmp-${process.pid}-${randomBytes(4).toString("hex")}`,
    );
    try {
      const meter = new DigestMeter();
      await pipeline(source, meter, createWriteStream(tmp, { mode: 0o644 }));
      const digest = meter.digest();
      await rename(tmp, this.path(digest));
      return { digest, sizeBytes: meter.sizeBytes };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  private async write(digest: string, fill: (tmp: string) => Promise<void>): Promise<void> {
    const final = this.path(digest);
    makePrivateDir(join(this.root, "sha256"));
    const tmp = `${final}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    try {
      await fill(tmp);
      await rename(tmp, final);
    } finally {
      await rm(tmp, { force: true });
    }
  }
}
