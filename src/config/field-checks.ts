import { ErrInvalidConfig } from "../errors.js";
import { describeValue } from "./describe.js";
import { parseReference } from "../image/index.js";
import { DEFAULT_IMAGE } from "./defaults.js";
import { envNameProblem, envValueProblem } from "./env-vars.js";

/**
 * One check per option. Each takes `unknown` because the SDK is also called from plain
 * JavaScript and from JSON (RPC), where the TypeScript types promise nothing, and each throws
 * ErrInvalidConfig with one line that names the field and the value it got.
 */

function fail(field: string, rule: string, value: unknown): never {
  throw new ErrInvalidConfig(`${field} must be ${rule}, got ${describeValue(value)}`);
}

export function checkPositiveNumber(field: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    fail(field, "a finite number > 0", value);
  }
  return value;
}

export function checkIntegerAtLeast(field: string, value: unknown, min: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    fail(field, `an integer >= ${min}`, value);
  }
  return value;
}

export function checkTimeoutSeconds(field: string, value: unknown, max: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > max) {
    fail(field, `a number of seconds from 0 (no deadline) to ${max}`, value);
  }
  return value;
}

export function checkBoolean(field: string, value: unknown): boolean {
  if (typeof value !== "boolean") fail(field, "true or false", value);
  return value;
}

export function checkOneOf<T extends string>(
  field: string,
  value: unknown,
  allowed: readonly T[],
): T {
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
    fail(field, `one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`, value);
  }
  return value as T;
}

/** Image references never contain blanks; anything finer is the image module's job. */
export function checkImageRef(field: string, value: unknown): string {
  if (typeof value !== "string" || value.length === 0 || /[\s\0]/.test(value)) {
    fail(field, "a non-empty image reference without spaces", value);
  }
  // The full grammar here, once: a detached start must not spawn a supervisor (and leave a
  // record) for a reference that can never resolve.
  if (value !== DEFAULT_IMAGE) parseReference(value);
  return value;
}

export function checkAbsoluteGuestPath(field: string, value: unknown): string {
  if (typeof value !== "string" || !value.startsWith("/") || value.includes("\0")) {
    fail(field, "an absolute guest path", value);
  }
  return value;
}

export function checkHostPath(field: string, value: unknown): string {
  if (typeof value !== "string" || value.length === 0 || value.includes("\0")) {
    fail(field, "a non-empty file path", value);
  }
  return value;
}

const HOSTNAME_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
/** sethostname(2) refuses more than HOST_NAME_MAX (64) bytes, even if each label is valid. */
const HOSTNAME_MAX_LENGTH = 64;

const CHECKPOINT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** A checkpoint name: also its file name in the store, so nothing path-like gets through. */
export function checkCheckpointName(field: string, value: unknown): string {
  if (typeof value !== "string" || !CHECKPOINT_NAME.test(value))
    throw new ErrInvalidConfig(
      `${field} must be 1-64 letters, digits, '.', '_' or '-' (not first), got ${JSON.stringify(value)}`,
    );
  return value;
}

export function checkHostname(field: string, value: unknown): string {
  const rule =
    "an RFC 1123 hostname (labels of letters, digits and inner hyphens, at most 63 each, " +
    `joined by dots, at most ${HOSTNAME_MAX_LENGTH} characters)`;
  if (
    typeof value !== "string" ||
    value.length > HOSTNAME_MAX_LENGTH ||
    !value.split(".").every((label) => HOSTNAME_LABEL.test(label))
  ) {
    fail(field, rule, value);
  }
  return value;
}

/** The largest valid uid/gid: (uid_t)-1 = 4294967295 means "no change" to the kernel. */
const MAX_ID = 4294967294;
/** shadow-utils' portable user and group names, plus the trailing `$` of machine accounts. */
const ACCOUNT_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}\$?$/;

function isUserPart(part: string): boolean {
  if (/^\d+$/.test(part)) return Number(part) <= MAX_ID;
  return ACCOUNT_NAME.test(part);
}

/** `uid`, `uid:gid`, `name`, `name:group` (and mixes); names are resolved later, in the guest. */
export function checkUserSpec(field: string, value: unknown): string {
  const parts = typeof value === "string" ? value.split(":") : [];
  if (parts.length < 1 || parts.length > 2 || !parts.every(isUserPart)) {
    fail(field, 'a user as "uid", "uid:gid", "name" or "name:group"', value);
  }
  return value as string;
}

/** A copy of `value` as an environment, refusing what execve cannot carry. */
export function checkEnvRecord(field: string, value: unknown): Record<string, string> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail(field, "an object of name: value strings", value);
  }
  const entries = Object.entries(value);
  for (const [name, v] of entries) {
    const nameProblem = envNameProblem(name);
    if (nameProblem !== undefined) throw new ErrInvalidConfig(`${field}: ${nameProblem}`);
    if (typeof v !== "string") fail(`${field}.${name}`, "a string", v);
    const valueProblem = envValueProblem(name, v);
    if (valueProblem !== undefined) throw new ErrInvalidConfig(`${field}: ${valueProblem}`);
  }
  // fromEntries defines `__proto__` as an own key rather than setting the prototype.
  return Object.fromEntries(entries) as Record<string, string>;
}
