/**
 * Typed errors with stable codes. The codes mirror the reference API's error variables
 * (ErrVMNotRunning, ErrTimeout, ...) so callers can branch on `err.code` without parsing text.
 */
export type WheellockErrorCode =
  | "ErrInvalidConfig"
  | "ErrVMNotRunning"
  | "ErrVMNotFound"
  | "ErrTimeout"
  | "ErrBlocked"
  | "ErrHostNotAllowed"
  | "ErrSecretLeak"
  | "ErrProtocol"
  | "ErrSetup"
  | "ErrNotFound"
  | "ErrExec"
  | "ErrFile"
  | "ErrImage"
  | "ErrVolumeInUse"
  | "ErrClosed"
  | "ErrCleanup";

export class WheellockError extends Error {
  readonly code: WheellockErrorCode;
  constructor(code: WheellockErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Bad options or flags: reported before anything starts. */
export class ErrInvalidConfig extends WheellockError {
  constructor(message: string) {
    super("ErrInvalidConfig", `invalid configuration: ${message}`);
  }
}

/** The sandbox's VM has stopped (closed, crashed, or timed out) and cannot serve requests. */
export class ErrVMNotRunning extends WheellockError {
  constructor(message = "sandbox VM is not running", options?: { cause?: unknown }) {
    super("ErrVMNotRunning", message, options);
  }
}

export class ErrVMNotFound extends WheellockError {
  constructor(id: string) {
    super("ErrVMNotFound", `sandbox not found: ${id}`);
  }
}

/** A deadline passed: the sandbox timeout or an operation timeout. */
export class ErrTimeout extends WheellockError {
  constructor(message: string) {
    super("ErrTimeout", message);
  }
}

/** The guest broke the wire protocol; the sandbox is torn down. */
export class ErrProtocol extends WheellockError {
  constructor(message: string) {
    super("ErrProtocol", `guest protocol error: ${message}`);
  }
}

/** Host prerequisites (QEMU, kernel, image, agent) are missing or could not be prepared. */
export class ErrSetup extends WheellockError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ErrSetup", message, options);
  }
}

/** A guest file operation failed; `errno` is the guest's errno name when known (ENOENT, ...). */
export class ErrFile extends WheellockError {
  readonly errno: string | undefined;
  readonly path: string;
  constructor(path: string, message: string, errno?: string) {
    // The guest's own message often names the path already; say it once.
    super("ErrFile", message.startsWith(`${path}:`) ? message : `${path}: ${message}`);
    this.path = path;
    this.errno = errno;
  }
}

/** An exec could not start (unknown user, bad working directory, ...). */
export class ErrExec extends WheellockError {
  constructor(message: string) {
    super("ErrExec", message);
  }
}

/**
 * An image could not be pulled, imported or unpacked: registry and auth failures (naming the
 * registry), digest mismatches, unsafe layers. A missing image is `ErrNotFound` instead.
 */
export class ErrImage extends WheellockError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ErrImage", message, options);
  }
}

/**
 * Something wheellock made (a run dir, an overlay layer) could not be removed. `path` is the
 * tree's root; `errno` the failing call's error name (EACCES, EBUSY, ...) when known.
 */
export class ErrCleanup extends WheellockError {
  constructor(
    readonly path: string,
    message: string,
    readonly errno?: string,
  ) {
    super("ErrCleanup", message);
  }
}
