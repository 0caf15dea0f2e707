/**
 * The checks of `options.mounts`: guest paths, mount types and their fields, quotas, and that
 * each host path is a directory or a regular file now (the mounts are opened from the plan
 * without checking again).
 */
import { statSync } from "node:fs";
import { ErrInvalidConfig } from "../errors.js";
import { isFileIdentity } from "../util/index.js";
import { ownDirConflict } from "./own-dirs.js";
import { checkMountQuota, validateGuestMount, type MountConfig } from "./volumes.js";

const MOUNT_TYPES: readonly string[] = ["host_fs", "overlay", "memory", "provider"];

function isId(value: unknown): boolean {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value < 0xffffffff;
}

function checkMount(guestPath: string, mount: MountConfig): MountConfig {
  const where = `mounts[${JSON.stringify(guestPath)}]`;
  const bad = (why: string): never => {
    throw new ErrInvalidConfig(`${where}: ${why}`);
  };
  if (typeof mount !== "object" || mount === null || !MOUNT_TYPES.includes(mount.type))
    return bad(`type must be one of ${MOUNT_TYPES.join(", ")}`);
  if (mount.quota !== undefined) {
    checkMountQuota(mount.quota, where);
    if (mount.type === "provider" || mount.readonly === true)
      return bad("a quota applies to writable overlay, memory and host_fs mounts only");
  }
  if ((mount.type === "host_fs" || mount.type === "overlay") && mount.hostPath !== undefined) {
    const st = statSync(mount.hostPath, { throwIfNoEntry: false });
    if (st === undefined) return bad(`host path does not exist: ${mount.hostPath}`);
    if (!st.isFile() && !st.isDirectory())
      return bad(`not a directory or regular file: ${mount.hostPath}`);
    // This user's own paths: what wheellock shares with guests (a build's cache mounts, kept
    // overlay layers) may be mounted; a serve node refuses those to callers itself.
    const conflict = ownDirConflict(mount.hostPath, { allowGuestShared: true });
    if (conflict !== undefined)
      return bad(`host path ${mount.hostPath} ${conflict}: a guest must not reach it`);
  }
  if (mount.hostIdentity !== undefined && !isFileIdentity(mount.hostIdentity))
    return bad("hostIdentity must be dev:ino (a node sets it)");
  if (mount.type === "provider" && mount.provider === undefined)
    return bad("a provider mount needs a provider");
  if ((mount.type === "host_fs" || mount.type === "overlay") && mount.hostPath === undefined)
    return bad(`a ${mount.type} mount needs a host path`);
  const owner = mount.owner;
  if (owner !== undefined && !(isId(owner.uid) && isId(owner.gid)))
    return bad("owner must be { uid, gid } with integers from 0 to 2^32-2");
  if (mount.keepUpper !== undefined && typeof mount.keepUpper !== "boolean")
    return bad("keepUpper must be a boolean");
  if (mount.keepUpper === true && mount.type !== "overlay")
    return bad("keepUpper applies to overlay mounts only");
  return mount;
}

/** The guest agent binds at most this many paths (MAX_MOUNTS in guest/fuse.c). */
export const MAX_MOUNTS = 16;

/** The mounts, each checked; keyed by their (validated) guest paths. */
export function checkMounts(
  mounts: Readonly<Record<string, MountConfig>> | undefined,
): Record<string, MountConfig> {
  if (mounts === undefined) return {};
  if (typeof mounts !== "object" || mounts === null || Array.isArray(mounts))
    throw new ErrInvalidConfig("mounts must be an object of guest path -> mount");
  const count = Object.keys(mounts).length;
  if (count > MAX_MOUNTS)
    throw new ErrInvalidConfig(`mounts: ${count} given, at most ${MAX_MOUNTS} are supported`);
  const out: Record<string, MountConfig> = {};
  for (const [guestPath, mount] of Object.entries(mounts)) {
    out[validateGuestMount(guestPath)] = checkMount(guestPath, mount);
  }
  return out;
}
