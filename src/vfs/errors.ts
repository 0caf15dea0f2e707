/**
 * The one error type providers throw: a POSIX errno the server sends back to the guest kernel.
 * Anything else a provider throws becomes EIO, so a provider bug never shows host error text
 * (which may contain host paths) to the guest.
 */
import { constants } from "node:os";

export const Errno = constants.errno;

export class VfsError extends Error {
  constructor(
    readonly errno: number,
    message?: string,
  ) {
    super(message ?? `errno ${errno}`);
    this.name = "VfsError";
  }
}

export function vfsError(errno: number): VfsError {
  return new VfsError(errno);
}

const errnoByCode = new Map<string, number>(
  Object.entries(Errno).map(([code, value]) => [code, value]),
);

/** A Node system error (err.code "ENOENT", ...) or a VfsError as an errno; EIO for anything else. */
export function toErrno(err: unknown): number {
  if (err instanceof VfsError) return err.errno;
  if (typeof err === "object" && err !== null && "code" in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === "string") {
      const errno = errnoByCode.get(code);
      if (errno !== undefined) return errno;
    }
  }
  return Errno.EIO;
}

/** Rethrows a Node system error as a VfsError (keeps the errno, drops the host-path message). */
export function asVfsError(err: unknown): VfsError {
  return err instanceof VfsError ? err : new VfsError(toErrno(err));
}
