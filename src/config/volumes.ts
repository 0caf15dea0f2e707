/**
 * Volume mounts (`-v host:guest[:ro|:overlay|:host_fs][,size=MB][,inodes=N]`) and the
 * guest-path rules of the reference (matchlock ParseVolumeMountSpec, ValidateGuestMount,
 * ValidateGuestPathWithinWorkspace), with its error texts, so scripts written for it work.
 */
import { existsSync } from "node:fs";
import { isAbsolute, posix, resolve } from "node:path";
import { ErrInvalidConfig } from "../errors.js";
import type { VfsProvider } from "../vfs/index.js";

export type MountType = "host_fs" | "overlay" | "memory" | "provider";

/**
 * What a writable mount may hold on the host (docs/FILESYSTEM.md, "Quotas"): file sizes
 * rounded up to 4 KiB plus 4 KiB per directory or symlink, and a number of inodes. Beyond
 * either, writes fail with ENOSPC; the guest's `df` shows the budget.
 */
export interface MountQuota {
  /** Default: the sandbox's disk size (overlay), 256 MiB (memory). */
  readonly sizeBytes?: number;
  /** Default: one per 16 KiB of `sizeBytes` (mkfs.ext4's ratio). */
  readonly inodes?: number;
}

export interface MountConfig {
  readonly type: MountType;
  /** Absolute host path (host_fs and overlay). */
  readonly hostPath?: string;
  /**
   * Set by a node (`serve`) on a host path it checked: the `dev:ino` it found there. The
   * sandbox refuses to serve anything else at that path (a swap after the check).
   */
  readonly hostIdentity?: string;
  readonly readonly?: boolean;
  /** Your own filesystem (`type: "provider"`): any object implementing VfsProvider. */
  readonly provider?: VfsProvider;
  /**
   * Owner the guest sees for files of the host user (host_fs, and an overlay's lower
   * directory). Default root (0:0); set it to the image's user when that user must write a
   * host_fs mount (the guest kernel checks permissions against it). In overlay mounts, new
   * files belong to the guest user that made them and the root shows the host directory's
   * own mode and owner.
   */
  readonly owner?: { readonly uid: number; readonly gid: number };
  /**
   * Overlay only: keep the upper layer (the guest's changes, as plain files) when the sandbox
   * closes, under `<data dir>/overlays/`; `sandbox.keptOverlays` says where. Default: dropped.
   */
  readonly keepUpper?: boolean;
  /**
   * Overlay (its upper layer), memory, and read-write host_fs mounts. Overlay and memory
   * mounts always have one (defaults in MountQuota); a host_fs mount only when this is set,
   * and then it bounds how much the directory may grow from what it held at mount time.
   */
  readonly quota?: MountQuota;
}

const QUOTA_MIN_BYTES = 4096;

/** A quota given by the user: whole numbers, at least one 4 KiB block and one inode. */
export function checkMountQuota(quota: unknown, where: string): MountQuota {
  const bad = (why: string): never => {
    throw new ErrInvalidConfig(`${where}: ${why}`);
  };
  if (typeof quota !== "object" || quota === null) return bad("quota must be an object");
  const { sizeBytes, inodes, ...rest } = quota as Record<string, unknown>;
  const unknownKey = Object.keys(rest)[0];
  if (unknownKey !== undefined)
    return bad(`quota has an unknown field ${JSON.stringify(unknownKey)}`);
  if (
    sizeBytes !== undefined &&
    !(Number.isSafeInteger(sizeBytes) && Number(sizeBytes) >= QUOTA_MIN_BYTES)
  ) {
    return bad(`quota.sizeBytes must be a whole number of at least ${QUOTA_MIN_BYTES}`);
  }
  if (inodes !== undefined && !(Number.isSafeInteger(inodes) && Number(inodes) >= 1)) {
    return bad("quota.inodes must be a whole number of at least 1");
  }
  return quota as MountQuota;
}

export const DEFAULT_WORKSPACE = "/workspace";

/** Guest paths go on the kernel command line: keep them to characters that need no quoting. */
const GUEST_MOUNT_RE = /^\/[a-zA-Z0-9/_.-]+$/;

export function validateGuestMount(path: string): string {
  if (!GUEST_MOUNT_RE.test(path) || path.split("/").includes("..")) {
    throw new ErrInvalidConfig(
      `invalid guest mount path ${JSON.stringify(path)}: must be absolute and contain only alphanumeric, '/', '_', '.', '-'`,
    );
  }
  return path;
}

/** Clean absolute guest path inside `workspace` ("/" accepts any absolute path). */
export function validateGuestPathWithinWorkspace(guest: string, workspace: string): string {
  if (!guest.startsWith("/")) {
    throw new ErrInvalidConfig(`guest path must be absolute: ${JSON.stringify(guest)}`);
  }
  const cleanGuest = cleanPath(guest);
  const cleanWs = cleanPath(workspace);
  if (cleanWs !== "/" && cleanGuest !== cleanWs && !cleanGuest.startsWith(`${cleanWs}/`)) {
    throw new ErrInvalidConfig(
      `guest path must be within workspace: ${JSON.stringify(cleanGuest)} not in ${JSON.stringify(cleanWs)}`,
    );
  }
  return cleanGuest;
}

function cleanPath(path: string): string {
  const clean = posix.normalize(path);
  return clean.length > 1 && clean.endsWith("/") ? clean.slice(0, -1) : clean;
}

export interface VolumeMount {
  readonly guestPath: string;
  readonly mount: MountConfig;
}

/** Parses one `-v` value; relative guest paths are inside the workspace. */
export function parseVolumeMount(
  spec: string,
  workspace: string = DEFAULT_WORKSPACE,
  cwd: string = process.cwd(),
  remote = false,
): VolumeMount {
  const bad = (why: string): never => {
    throw new ErrInvalidConfig(`invalid volume mount ${JSON.stringify(spec)}: ${why}`);
  };
  const parts = spec.split(":");
  const split = remote ? undefined : splitAtExistingHostPath(parts, cwd);
  if (split === undefined && (parts.length < 2 || parts.length > 3)) {
    return bad(
      parts.length > 3
        ? `expected format host:guest or host:guest:ro (a host path may contain ':' only if it exists, and no prefix of this one does)`
        : "expected format host:guest or host:guest:ro",
    );
  }
  const [hostPart = "", guestPart = "", option] = split ?? parts;
  if (hostPart === "" || guestPart === "")
    return bad("expected format host:guest or host:guest:ro");
  // A remote node has its own files: a path relative to this machine means nothing there.
  if (remote && !isAbsolute(hostPart))
    return bad(`with --remote the host path names a path on the node and must be absolute`);
  const hostPath = resolve(cwd, hostPart);
  if (!remote && !existsSync(hostPath))
    return bad(
      parts.length > 2
        ? `host path does not exist: ${hostPath} (nor does any longer host path up to a ':')`
        : `host path does not exist: ${hostPath}`,
    );
  const { mode, quota } = parseVolumeOptions(option, bad);
  let mount: MountConfig;
  switch (mode) {
    case undefined:
    case "overlay":
      mount = { type: "overlay", hostPath };
      break;
    case "ro":
    case "readonly":
      if (quota !== undefined) return bad("size= and inodes= apply to writable mounts only");
      mount = { type: "host_fs", hostPath, readonly: true };
      break;
    default:
      mount = { type: "host_fs", hostPath };
      break;
  }
  if (quota !== undefined) mount = { ...mount, quota };
  const guest = guestPart.startsWith("/") ? guestPart : posix.join(cleanPath(workspace), guestPart);
  try {
    const guestPath = validateGuestPathWithinWorkspace(guest, workspace);
    return { guestPath: validateGuestMount(guestPath), mount };
  } catch (err) {
    return bad((err as Error).message.replace(/^invalid configuration: /, ""));
  }
}

/**
 * `host:guest[:opts]` where the host path may itself contain ':'. The shortest prefix that names
 * an existing host path and leaves `guest` or `guest:opts` with valid options wins, so every
 * form that worked before keeps its meaning (guest paths never contain ':'). Undefined: none.
 */
function splitAtExistingHostPath(
  parts: readonly string[],
  cwd: string,
): [string, string, string | undefined] | undefined {
  for (let k = 1; k < parts.length; k++) {
    const rest = parts.slice(k);
    const host = parts.slice(0, k).join(":");
    if (rest.length > 2 || host === "" || !existsSync(resolve(cwd, host))) continue;
    const [guest = "", option] = rest;
    if (option !== undefined && !optionsParse(option)) continue;
    return [host, guest, option];
  }
  return undefined;
}

function optionsParse(option: string): boolean {
  try {
    parseVolumeOptions(option, (why) => {
      throw new Error(why);
    });
    return true;
  } catch {
    return false;
  }
}

const VOLUME_MODES: readonly string[] = ["ro", "readonly", "overlay", "host_fs"];
const MIB = 1024 * 1024;

/**
 * The `:OPT` part of `-v`: a comma-separated list of at most one mode (`ro`, `overlay`,
 * `host_fs`) and the quota keys `size=MB` and `inodes=N`.
 */
function parseVolumeOptions(
  option: string | undefined,
  bad: (why: string) => never,
): { mode: string | undefined; quota: MountQuota | undefined } {
  if (option === undefined) return { mode: undefined, quota: undefined };
  let mode: string | undefined;
  let sizeBytes: number | undefined;
  let inodes: number | undefined;
  for (const raw of option.split(",")) {
    const item = raw.trim().toLowerCase();
    const eq = item.indexOf("=");
    const key = eq < 0 ? item : item.slice(0, eq);
    const value = eq < 0 ? undefined : item.slice(eq + 1);
    if (value === undefined && VOLUME_MODES.includes(key) && mode === undefined) {
      mode = key;
    } else if (key === "size" && value !== undefined && sizeBytes === undefined) {
      if (!/^[1-9]\d*$/.test(value) || !Number.isSafeInteger(Number(value) * MIB)) {
        return bad(`size must be a whole number of MB, got ${JSON.stringify(value)}`);
      }
      sizeBytes = Number(value) * MIB;
    } else if (key === "inodes" && value !== undefined && inodes === undefined) {
      if (!/^[1-9]\d*$/.test(value) || !Number.isSafeInteger(Number(value))) {
        return bad(`inodes must be a whole number, got ${JSON.stringify(value)}`);
      }
      inodes = Number(value);
    } else {
      return bad(
        eq < 0
          ? `unknown option ${JSON.stringify(raw)} (use 'ro', 'overlay', or 'host_fs')`
          : `unknown option ${JSON.stringify(raw)} (quota options are size=MB and inodes=N, once each)`,
      );
    }
  }
  const quota =
    sizeBytes === undefined && inodes === undefined
      ? undefined
      : {
          ...(sizeBytes !== undefined ? { sizeBytes } : {}),
          ...(inodes !== undefined ? { inodes } : {}),
        };
  return { mode, quota };
}
