/**
 * Bounded reads from a request body the guest kernel wrote. Every read checks the remaining
 * length first and throws EINVAL on a short body, so a malformed request becomes an error
 * reply for that request and never an exception out of the server.
 */
import { PATH_MAX_BYTES } from "./fuse-constants.js";
import { Errno, VfsError } from "./errors.js";
import { checkName } from "./names.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

export class BodyReader {
  private offset = 0;

  constructor(private readonly body: Buffer) {}

  private need(bytes: number): number {
    const at = this.offset;
    if (at + bytes > this.body.length) throw new VfsError(Errno.EINVAL, "short request body");
    this.offset += bytes;
    return at;
  }

  u32(): number {
    return this.body.readUInt32LE(this.need(4));
  }

  u16(): number {
    return this.body.readUInt16LE(this.need(2));
  }

  u64(): bigint {
    return this.body.readBigUInt64LE(this.need(8));
  }

  /** A u64 used as a size or offset: beyond 2^53 it cannot be a real one. */
  u64Number(): number {
    const value = this.u64();
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new VfsError(Errno.EINVAL, "u64 overflow");
    return Number(value);
  }

  skip(bytes: number): void {
    this.need(bytes);
  }

  /** A NUL-terminated string of at most `maxBytes` bytes, which must be UTF-8. */
  cstring(maxBytes: number): string {
    const end = this.body.indexOf(0, this.offset);
    if (end < 0 || end - this.offset > maxBytes) throw new VfsError(Errno.EINVAL, "bad string");
    const bytes = this.body.subarray(this.offset, end);
    this.offset = end + 1;
    try {
      return utf8.decode(bytes);
    } catch {
      // Names are bytes on Linux, but a lossy decode could map two guest names to one host name.
      throw new VfsError(Errno.EINVAL, "name is not UTF-8");
    }
  }

  /** One path component (see checkName). */
  name(): string {
    // One byte more than NAME_MAX so an overlong name reports ENAMETOOLONG, not EINVAL.
    return checkName(this.cstring(PATH_MAX_BYTES));
  }

  /** A symlink target: any non-empty string up to PATH_MAX; it is never resolved on the host. */
  linkTarget(): string {
    const target = this.cstring(PATH_MAX_BYTES - 1);
    if (target.length === 0) throw new VfsError(Errno.ENOENT);
    return target;
  }

  rest(): Buffer {
    const at = this.offset;
    this.offset = this.body.length;
    return this.body.subarray(at);
  }
}
