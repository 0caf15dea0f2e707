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
 * Which mounts a copy can take over: host directories (the host still has their contents),
 * memory mounts and overlays (their contents, kept in this process, go with the copy: see
 * FuseMounts.exportContents). A custom provider is a JS object of this process alone.
 */
export function copyableMountProblem(guestPath: string, mount: MountConfig): string | undefined {
  if (mount.type !== "provider") return undefined;
  return (
    `mount ${guestPath} is a custom provider mount: copies (checkpoint, fork) cannot carry ` +
    "its contents (an object of this process); use a host directory, overlay or memory mount"
  );
}

/**
 * The mounts a copy serves in place of `mounts` (all copyable: see copyableMountProblem).
 * A memory mount's or an overlay's contents are always the copy's own (there is no host place
 * to share them): `share` applies to host directories only, and `readonly` makes any mount
 * read-only. An overlay's host directory stays its read-only lower layer in every mode.
 */
export function mountsForCopy(
  mounts: Readonly<Record<string, MountConfig>>,
  mode: ForkMountsMode,
): Record<string, MountConfig> {
  const out: Record<string, MountConfig> = {};
  for (const [guestPath, mount] of Object.entries(mounts)) {
    const problem = copyableMountProblem(guestPath, mount);
    if (problem !== undefined) throw new ErrInvalidConfig(problem);
    if (mount.readonly === true) out[guestPath] = mount;
    else if (mode === "readonly") out[guestPath] = { ...mount, readonly: true };
    else if (mode === "share" || mount.type !== "host_fs") out[guestPath] = mount;
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
