/**
 * What a checked host path named, as `dev:ino`. A node checks a caller's path (it is under a
 * directory its owner opened) long before the supervisor opens it; whoever can write near
 * that path could swap it in between (for a symlink to any file the `serve` user can read).
 * The node records the identity of what it checked; the opener compares it with what it
 * really opened, and refuses anything else.
 */
import { fstatSync, lstatSync, type BigIntStats } from "node:fs";

/** `dev:ino` of a stat (bigint: inode numbers beyond 2^53 exist). */
export function fileIdentity(stat: BigIntStats): string {
  return `${stat.dev}:${stat.ino}`;
}

/** The identity of an open descriptor. */
export function fdIdentity(fd: number): string {
  return fileIdentity(fstatSync(fd, { bigint: true }));
}

/** The identity of `path` itself (a symlink is not followed). */
export function pathIdentity(path: string): string {
  return fileIdentity(lstatSync(path, { bigint: true }));
}

/** Whether a caller-given value can be an identity (the node's own format). */
export function isFileIdentity(value: unknown): value is string {
  return typeof value === "string" && /^\d{1,20}:\d{1,20}$/.test(value);
}
