/**
 * The static checks of `options.mounts`: guest paths, mount types and their fields. What can
 * only be checked against the host at start (the host path exists and is a directory or a
 * file) is checked when the mounts are opened, right before the VM starts.
 */
import { ErrInvalidConfig } from "../errors.js";
import { validateGuestMount, type MountConfig } from "./volumes.js";

const MOUNT_TYPES: readonly string[] = ["host_fs", "overlay", "memory", "provider"];

function isId(value: unknown): boolean {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value < 0xffffffff;
}

function checkMount(guestPath: string, mount: MountConfig): MountConfig {
  const bad = (why: string): never => {
    throw new ErrInvalidConfig(`mounts[${JSON.stringify(guestPath)}]: ${why}`);
  };
  if (typeof mount !== "object" || mount === null || !MOUNT_TYPES.includes(mount.type))
    return bad(`type must be one of ${MOUNT_TYPES.join(", ")}`);
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

/** The mounts, each checked; keyed by their (validated) guest paths. */
export function checkMounts(
  mounts: Readonly<Record<string, MountConfig>> | undefined,
): Record<string, MountConfig> {
  if (mounts === undefined) return {};
  if (typeof mounts !== "object" || mounts === null || Array.isArray(mounts))
    throw new ErrInvalidConfig("mounts must be an object of guest path -> mount");
  const out: Record<string, MountConfig> = {};
  for (const [guestPath, mount] of Object.entries(mounts)) {
    out[validateGuestMount(guestPath)] = checkMount(guestPath, mount);
  }
  return out;
}
