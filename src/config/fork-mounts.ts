/**
 * What a copy of a sandbox (a fork, or a start from a checkpoint) gets for each of the
 * original's mounts. A read-write host directory is never written by two sandboxes unless the
 * user asks for it: by default each copy writes to an overlay of its own over it.
 */
import { ErrInvalidConfig } from "../errors.js";
import { checkOneOf } from "./field-checks.js";
import type { MountConfig } from "./volumes.js";

export const FORK_MOUNTS_MODES = ["overlay", "readonly", "share"] as const;
/**
 * `overlay` (default): each copy reads the host directory and writes to a layer of its own
 * (dropped with the copy); `readonly`: writes fail with EROFS; `share`: the copies and the
 * original write the same host files.
 */
export type ForkMountsMode = (typeof FORK_MOUNTS_MODES)[number];

export function checkForkMounts(where: string, value: unknown): ForkMountsMode {
  return checkOneOf(where, value, FORK_MOUNTS_MODES);
}

/**
 * Which mounts a copy can take over: host directories (read-only or read-write), whose
 * contents the host still has. A memory or custom provider's contents, or an overlay's
 * upper layer, live in the original sandbox's process alone.
 */
export function copyableMountProblem(guestPath: string, mount: MountConfig): string | undefined {
  if (mount.type === "host_fs") return undefined;
  return (
    `mount ${guestPath} is ${mount.type === "overlay" ? "an" : "a"} ${mount.type} mount: copies (checkpoint, fork) support host ` +
    "directory mounts only (its contents live in this sandbox's process)"
  );
}

/** The mounts a copy serves in place of `mounts` (all copyable: see copyableMountProblem). */
export function mountsForCopy(
  mounts: Readonly<Record<string, MountConfig>>,
  mode: ForkMountsMode,
): Record<string, MountConfig> {
  const out: Record<string, MountConfig> = {};
  for (const [guestPath, mount] of Object.entries(mounts)) {
    const problem = copyableMountProblem(guestPath, mount);
    if (problem !== undefined) throw new ErrInvalidConfig(problem);
    if (mount.readonly === true || mode === "share") out[guestPath] = mount;
    else if (mode === "readonly") out[guestPath] = { ...mount, readonly: true };
    else {
      // The host_fs quota bounds the directory's growth; an overlay's bounds its layer.
      const { hostPath, hostIdentity, owner, quota } = mount;
      out[guestPath] = {
        type: "overlay",
        ...(hostPath === undefined ? {} : { hostPath }),
        ...(hostIdentity === undefined ? {} : { hostIdentity }),
        ...(owner === undefined ? {} : { owner }),
        ...(quota === undefined ? {} : { quota }),
      };
    }
  }
  return out;
}
