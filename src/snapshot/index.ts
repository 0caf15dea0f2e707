/**
 * Memory snapshots beyond one machine: list and remove the local ones, push one to a registry
 * as an OCI artifact, pull one that another node saved (checked against this node's QEMU,
 * kernel, agent, image and accelerator first). The registry code loads on first use.
 */
import { ErrInvalidConfig, ErrNotFound } from "../errors.js";
import { discardSnapshot, listSnapshots, readSnapshotMeta } from "../sandbox/index.js";

export type { SnapshotKeyDocument, SnapshotImage } from "./artifact.js";
export type { SnapshotPullOptions, SnapshotPullResult } from "./pull.js";
export type { SnapshotPushOptions } from "./push.js";
export { listSnapshots };

type Push = typeof import("./push.js");
type Pull = typeof import("./pull.js");

/** Pushes a local snapshot to a registry (see push.ts). */
export async function pushSnapshot(
  ...args: Parameters<Push["pushSnapshot"]>
): ReturnType<Push["pushSnapshot"]> {
  return (await import("./push.js")).pushSnapshot(...args);
}

/** Pulls a snapshot from a registry into the local store, if it fits this node (see pull.ts). */
export async function pullSnapshot(
  ...args: Parameters<Pull["pullSnapshot"]>
): ReturnType<Pull["pullSnapshot"]> {
  return (await import("./pull.js")).pullSnapshot(...args);
}

/** Removes a local snapshot by key (`wheellock snapshot rm`). */
export function removeSnapshot(key: string): void {
  if (!/^[a-f0-9]{32}$/.test(key))
    throw new ErrInvalidConfig(`"${key}" is not a snapshot key (32 hex digits; see snapshot ls)`);
  if (!readSnapshotMeta(key)) throw new ErrNotFound(`snapshot not found: ${key}`);
  discardSnapshot(key);
}
