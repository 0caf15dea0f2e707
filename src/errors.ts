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
  | "ErrCleanup"
  | "ErrBudgetExceeded"
  | "ErrSnapshotMismatch"
  | "ErrAuth"
  | "ErrCapacity"
  | "ErrBuild";

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

  /** A recorded sandbox that does not run, with why it stopped when that was recorded. */
  static withStatus(id: string, status: string, why?: string): ErrVMNotRunning {
    return new ErrVMNotRunning(
      `sandbox ${id} is not running (status: ${status})${why ? `: ${why}` : ""}`,
    );
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

/** A network request or connection was refused by policy (a rule, a private address, SNI). */
export class ErrBlocked extends WheellockError {
  constructor(message: string) {
    super("ErrBlocked", message);
  }
}

/** A request went to a host outside the sandbox's allowlist. */
export class ErrHostNotAllowed extends WheellockError {
  constructor(message: string) {
    super("ErrHostNotAllowed", message);
  }
}

/** A secret's placeholder was headed somewhere the secret may not go; nothing was sent. */
export class ErrSecretLeak extends WheellockError {
  constructor(message: string) {
    super("ErrSecretLeak", message);
  }
}

/** Something named does not exist: an image, a volume, a checkpoint. */
export class ErrNotFound extends WheellockError {
  constructor(message: string) {
    super("ErrNotFound", message);
  }
}

/** The operation was abandoned by the host (a closed exec stream, a cancelled request). */
export class ErrClosed extends WheellockError {
  constructor(message: string) {
    super("ErrClosed", message);
  }
}

/** A volume or disk image is attached read-write elsewhere (or read-only, for a writer). */
export class ErrVolumeInUse extends WheellockError {
  constructor(message: string) {
    super("ErrVolumeInUse", message);
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

/** A budget (`maxEgressBytes`, `maxCpuSeconds`) was spent: the sandbox was stopped. */
export class ErrBudgetExceeded extends WheellockError {
  constructor(message: string) {
    super("ErrBudgetExceeded", message);
  }
}

/**
 * A memory snapshot from elsewhere (a registry) does not fit this node: another QEMU, kernel,
 * agent, image or accelerator, or a tampered artifact. It is never restored; sandboxes here
 * cold-boot instead.
 */
export class ErrSnapshotMismatch extends WheellockError {
  constructor(message: string) {
    super("ErrSnapshotMismatch", message);
  }
}

/** A remote node refused the credentials: none, wrong, or for another sandbox (401/403). */
export class ErrAuth extends WheellockError {
  constructor(message: string) {
    super("ErrAuth", message);
  }
}

/** A remote node is at one of its limits (sandboxes, connections); try another or later. */
export class ErrCapacity extends WheellockError {
  constructor(message: string) {
    super("ErrCapacity", message);
  }
}

/**
 * An image build failed: a Dockerfile error (`line` names its line), a failing `RUN` (its
 * `exitCode`), a context path that escapes, a layer that would carry a secret, an interrupt.
 */
export class ErrBuild extends WheellockError {
  constructor(
    message: string,
    readonly details: { line?: number; exitCode?: number } = {},
  ) {
    super("ErrBuild", message);
  }
}

/** The class each code is thrown as (ErrFile has fields of its own and is revived apart). */
const CLASS_BY_CODE: Record<
  Exclude<WheellockErrorCode, "ErrFile">,
  { prototype: WheellockError }
> = {
  ErrInvalidConfig,
  ErrVMNotRunning,
  ErrVMNotFound,
  ErrTimeout,
  ErrBlocked,
  ErrHostNotAllowed,
  ErrSecretLeak,
  ErrProtocol,
  ErrSetup,
  ErrNotFound,
  ErrExec,
  ErrImage,
  ErrVolumeInUse,
  ErrClosed,
  ErrCleanup,
  ErrBudgetExceeded,
  ErrSnapshotMismatch,
  ErrAuth,
  ErrCapacity,
  ErrBuild,
};

/**
 * The typed error for a code and a message that crossed a process boundary (a supervisor's
 * socket, a remote node): the same class as where it was thrown, so `instanceof` and `code`
 * behave alike on both sides, with the message exactly as it was (no second prefix).
 */
export function reviveError(
  code: string,
  message: string,
  file?: { path: string; errno?: string },
): WheellockError {
  if (code === "ErrFile") return new ErrFile(file?.path ?? "", message, file?.errno);
  const known = Object.hasOwn(CLASS_BY_CODE, code)
    ? CLASS_BY_CODE[code as keyof typeof CLASS_BY_CODE]
    : undefined;
  const err = new WheellockError((known ? code : "ErrExec") as WheellockErrorCode, message);
  if (known) {
    Object.setPrototypeOf(err, known.prototype);
    err.name = (known.prototype.constructor as { name: string }).name;
  }
  return err;
}
