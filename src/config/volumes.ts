/**
 * Volume mounts (`-v host:guest[:ro|:overlay|:host_fs]`) and the guest-path rules of the
 * reference (matchlock ParseVolumeMountSpec, ValidateGuestMount,
 * ValidateGuestPathWithinWorkspace), with its error texts, so scripts written for it work.
 */
import { existsSync } from "node:fs";
import { posix, resolve } from "node:path";
import { ErrInvalidConfig } from "../errors.js";
import type { VfsProvider } from "../vfs/index.js";

export type MountType = "host_fs" | "overlay" | "memory" | "provider";

export interface MountConfig {
  readonly type: MountType;
  /** Absolute host path (host_fs and overlay). */
  readonly hostPath?: string;
  readonly readonly?: boolean;
  /** Your own filesystem (`type: "provider"`): any object implementing VfsProvider. */
  readonly provider?: VfsProvider;
  /**
   * Owner the guest sees for files of the host user (host_fs, overlay). Default root (0:0);
   * set it to the image's user when that user must write the mount (the guest kernel
   * checks permissions against it).
   */
  readonly owner?: { readonly uid: number; readonly gid: number };
  /**
   * Overlay only: keep the upper layer (the guest's changes, as plain files) when the sandbox
   * closes, under `<data dir>/overlays/`; `sandbox.keptOverlays` says where. Default: dropped.
   */
  readonly keepUpper?: boolean;
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
): VolumeMount {
  const bad = (why: string): never => {
    throw new ErrInvalidConfig(`invalid volume mount ${JSON.stringify(spec)}: ${why}`);
  };
  const parts = spec.split(":");
  if (parts.length < 2 || parts.length > 3) {
    return bad("expected format host:guest or host:guest:ro");
  }
  const [hostPart = "", guestPart = "", option] = parts;
  if (hostPart === "" || guestPart === "")
    return bad("expected format host:guest or host:guest:ro");
  const hostPath = resolve(cwd, hostPart);
  if (!existsSync(hostPath)) return bad(`host path does not exist: ${hostPath}`);
  let mount: MountConfig;
  switch (option?.trim().toLowerCase()) {
    case undefined:
    case "overlay":
      mount = { type: "overlay", hostPath };
      break;
    case "ro":
    case "readonly":
      mount = { type: "host_fs", hostPath, readonly: true };
      break;
    case "host_fs":
      mount = { type: "host_fs", hostPath };
      break;
    default:
      return bad(`unknown option ${JSON.stringify(option)} (use 'ro', 'overlay', or 'host_fs')`);
  }
  const guest = guestPart.startsWith("/") ? guestPart : posix.join(cleanPath(workspace), guestPart);
  try {
    const guestPath = validateGuestPathWithinWorkspace(guest, workspace);
    return { guestPath: validateGuestMount(guestPath), mount };
  } catch (err) {
    return bad((err as Error).message.replace(/^invalid configuration: /, ""));
  }
}
