/**
 * A write stream for a new host file that leaves runs of zeros as holes: what `wheellock cp`
 * copies out of a guest is the guest's to shape, and a guest file of a terabyte of holes
 * (`truncate -s 1T`) arrives as a terabyte of zeros. Written out as they come, the zeros would
 * fill the host's disk; skipped, the copy costs only its data blocks, as `cp --sparse` does.
 * The file must be new (or empty): a skipped block reads as zero only where nothing was.
 */
import { closeSync, constants, ftruncateSync, openSync, writeSync } from "node:fs";
import { Writable } from "node:stream";

/** Holes are made in whole file-system blocks; 4 KiB is the common block size. */
const BLOCK = 4096;
const ZEROS = Buffer.alloc(BLOCK);

/** True when `buf` holds only zero bytes. */
function allZero(buf: Buffer): boolean {
  return buf.equals(buf.length === BLOCK ? ZEROS : ZEROS.subarray(0, buf.length));
}

/**
 * Never through a symlink at `path` (a link already in the destination would redirect the
 * write); `exclusive`: the file must not exist (a temp name, which others could predict).
 */
const OPEN_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW;

export function createSparseWriteStream(
  path: string,
  mode: number,
  options: { exclusive?: boolean } = {},
): Writable {
  let fd = -1;
  let position = 0;
  return new Writable({
    // Synchronous writes: one file at a time, and a disk error surfaces on this chunk.
    construct(done) {
      try {
        const flags = OPEN_FLAGS | (options.exclusive ? constants.O_EXCL : constants.O_TRUNC);
        fd = openSync(path, flags, mode);
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    write(chunk: Buffer, _encoding, done) {
      try {
        let runStart = -1;
        // Pieces end on the file's block boundaries, so a skipped piece is a whole block.
        for (let at = 0; at < chunk.length;) {
          const end = Math.min(chunk.length, at + BLOCK - ((position + at) % BLOCK));
          const zero = allZero(chunk.subarray(at, end));
          if (!zero && runStart < 0) runStart = at;
          if (zero && runStart >= 0) {
            writeSync(fd, chunk, runStart, at - runStart, position + runStart);
            runStart = -1;
          }
          at = end;
        }
        if (runStart >= 0)
          writeSync(fd, chunk, runStart, chunk.length - runStart, position + runStart);
        position += chunk.length;
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    final(done) {
      try {
        // Trailing zeros were skipped: the length still counts them.
        ftruncateSync(fd, position);
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    destroy(err, done) {
      if (fd >= 0) closeSync(fd);
      fd = -1;
      done(err);
    },
  });
}
