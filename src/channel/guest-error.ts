/**
 * Errors the guest reports with an ERROR frame. They extend the project's ErrFile / ErrExec
 * so callers branch on `code`, and also keep the raw errno number, since the guest's errno
 * space is Linux's whatever the host OS is.
 */
import { ErrExec, ErrFile } from "../errors.js";

// Linux (asm-generic) numbers; os.constants.errno would be wrong on a macOS host.
const LINUX_ERRNO_NAMES: readonly string[] = [
  "",
  "EPERM",
  "ENOENT",
  "ESRCH",
  "EINTR",
  "EIO",
  "ENXIO",
  "E2BIG",
  "ENOEXEC",
  "EBADF",
  "ECHILD",
  "EAGAIN",
  "ENOMEM",
  "EACCES",
  "EFAULT",
  "ENOTBLK",
  "EBUSY",
  "EEXIST",
  "EXDEV",
  "ENODEV",
  "ENOTDIR",
  "EISDIR",
  "EINVAL",
  "ENFILE",
  "EMFILE",
  "ENOTTY",
  "ETXTBSY",
  "EFBIG",
  "ENOSPC",
  "ESPIPE",
  "EROFS",
  "EMLINK",
  "EPIPE",
  "EDOM",
  "ERANGE",
  "EDEADLK",
  "ENAMETOOLONG",
  "ENOLCK",
  "ENOSYS",
  "ENOTEMPTY",
  "ELOOP",
];

/** "ENOENT" for 2; "E<n>" for numbers outside the table; undefined when the guest sent none. */
export function errnoName(errno: number | undefined): string | undefined {
  if (errno === undefined) return undefined;
  const name = LINUX_ERRNO_NAMES[errno];
  return name !== undefined && name !== "" ? name : `E${errno}`;
}

export class GuestFileError extends ErrFile {
  readonly errnoNumber: number | undefined;
  constructor(path: string, message: string, errno: number | undefined) {
    super(path, message, errnoName(errno));
    this.errnoNumber = errno;
  }
}

/** Also used for non-file, non-exec operations (PING, CONFIGURE) that the guest failed. */
export class GuestExecError extends ErrExec {
  readonly errno: string | undefined;
  readonly errnoNumber: number | undefined;
  constructor(message: string, errno: number | undefined) {
    super(message);
    this.errno = errnoName(errno);
    this.errnoNumber = errno;
  }
}
