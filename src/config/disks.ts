/**
 * Extra block devices (`--disk host.ext4:/mnt[:ro]`, `--disk @volume:/mnt[:ro]`, SDK `disks`):
 * raw ext4 images attached as virtio disks and mounted by the guest agent. The spec syntax and
 * error texts follow the reference's parseDiskMountSpec.
 */
import { statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { ErrInvalidConfig } from "../errors.js";
import { isFileIdentity } from "../util/index.js";
import { checkVolumeName, volumePath } from "../volumes/index.js";
import { ownDirConflict } from "./own-dirs.js";
import { validateGuestMount } from "./volumes.js";

export interface DiskConfig {
  /** An ext4 image file on the host (relative: against the current directory) ... */
  hostPath?: string;
  /** ... or a named volume (`wheellock volume create NAME`); exactly one of the two. */
  volume?: string;
  /** Absolute guest directory the file system is mounted on (created when missing). */
  guestPath: string;
  /** Attach and mount read-only; any number of sandboxes may share a read-only disk. */
  readonly?: boolean;
  /**
   * Set by a node (`serve`) on a host path it checked: the `dev:ino` it found there. The
   * image opened for the VM must be that file (a swap after the check is refused).
   */
  hostIdentity?: string;
}

export interface ResolvedDisk {
  /** Absolute path of the image file. */
  readonly hostPath: string;
  readonly guestPath: string;
  readonly readonly: boolean;
  /** The volume name when attached by name. */
  readonly volume: string | undefined;
  /** `DiskConfig.hostIdentity`: what the opened image must be. */
  readonly hostIdentity: string | undefined;
  /**
   * A read-only disk's `size:mtimeNs:ctimeNs` when the sandbox attached it (set at launch,
   * never by a caller): a checkpoint or fork refuses the disk if it changed since then.
   */
  readonly attachedState?: string;
}

/** QEMU microvm has a few dozen virtio-mmio slots; the root, upper, NIC and ports use some. */
export const MAX_DISKS = 8;

/** Guest trees the agent itself mounts or needs: a disk over them would break the guest. */
const RESERVED_GUEST_PATHS = ["/", "/proc", "/sys", "/dev", "/run"];

const FORMAT = "expected format host_path:guest_mount[:ro] or @volume_name:guest_mount[:ro]";

/** Parses one `--disk` value. */
export function parseDiskSpec(
  spec: string,
  cwd: string = process.cwd(),
  remote = false,
): DiskConfig {
  const bad = (why: string): never => {
    throw new ErrInvalidConfig(`invalid disk mount ${JSON.stringify(spec)}: ${why}`);
  };
  const parts = spec.split(":");
  if (parts.length < 2 || parts.length > 3) return bad(FORMAT);
  const [host = "", guestPath = "", option] = parts;
  if (host === "" || guestPath === "") return bad(FORMAT);
  let readonly = false;
  if (option !== undefined) {
    const o = option.trim().toLowerCase();
    if (o !== "ro" && o !== "readonly") {
      return bad(`unknown disk option ${JSON.stringify(option)} (use "ro")`);
    }
    readonly = true;
  }
  // A remote node has its own files: a path relative to this machine means nothing there.
  if (remote && !host.startsWith("@") && !isAbsolute(host))
    return bad("with --remote the host path names a path on the node and must be absolute");
  return host.startsWith("@")
    ? { volume: host.slice(1), guestPath, readonly }
    : { hostPath: resolve(cwd, host), guestPath, readonly };
}

/**
 * Checks the SDK's `disks` (and parsed `--disk` values): existing image files, valid guest
 * paths, no two disks at one path, none hidden by a disk mounted after it or a FUSE mount.
 */
export function checkDisks(value: unknown, mountPaths: readonly string[]): ResolvedDisk[] {
  if (!Array.isArray(value)) throw new ErrInvalidConfig("disks must be an array");
  if (value.length > MAX_DISKS) {
    throw new ErrInvalidConfig(`at most ${MAX_DISKS} disks, got ${value.length}`);
  }
  const seen = new Set<string>();
  return value.map((raw: unknown, i): ResolvedDisk => {
    const bad = (why: string): never => {
      throw new ErrInvalidConfig(`disks[${i}]: ${why}`);
    };
    if (typeof raw !== "object" || raw === null) return bad("must be an object");
    const disk = raw as Partial<DiskConfig>;
    if (typeof disk.guestPath !== "string") return bad("guestPath must be a string");
    const guestPath = validateGuestMount(disk.guestPath.replace(/(.)\/+$/, "$1"));
    if (RESERVED_GUEST_PATHS.some((r) => guestPath === r || guestPath.startsWith(`${r}/`))) {
      bad(`cannot mount a disk on ${guestPath} (the guest needs it)`);
    }
    if (seen.has(guestPath)) bad(`two disks are mounted at ${guestPath}`);
    // Disks are mounted in list order: one inside a disk listed after it would be hidden.
    const inner = [...seen].find((p) => p.startsWith(`${guestPath}/`));
    if (inner !== undefined) {
      bad(`disk at ${inner} would be hidden by this one at ${guestPath}: list ${guestPath} first`);
    }
    seen.add(guestPath);
    const shadow = mountPaths.find((m) => guestPath === m || guestPath.startsWith(`${m}/`));
    if (shadow !== undefined) {
      bad(`disk at ${guestPath} will be shadowed by the VFS mount at ${shadow}`);
    }
    if (disk.readonly !== undefined && typeof disk.readonly !== "boolean") {
      bad("readonly must be a boolean");
    }
    if ((disk.hostPath === undefined) === (disk.volume === undefined)) {
      bad("give exactly one of hostPath and volume");
    }
    let hostPath: string;
    if (disk.volume !== undefined) {
      if (typeof disk.volume !== "string") return bad("volume must be a string");
      const name = checkVolumeName(disk.volume);
      hostPath = volumePath(name);
      if (!isFile(hostPath)) bad(`named volume not found: ${name}`);
    } else {
      if (typeof disk.hostPath !== "string" || disk.hostPath === "") {
        return bad("hostPath must be a non-empty string");
      }
      hostPath = resolve(disk.hostPath);
      if (!isFile(hostPath)) bad(`disk image not found (must be a file): ${hostPath}`);
      // Named volumes live in the data dir and are attached by name (locked, checked).
      const conflict = ownDirConflict(hostPath);
      if (conflict !== undefined)
        bad(
          conflict.includes("wheellock's")
            ? `disk image ${hostPath} ${conflict}: attach a copy of it, or a volume by name`
            : `host path ${hostPath} ${conflict}: a guest must not reach it`,
        );
    }
    if (disk.hostIdentity !== undefined && !isFileIdentity(disk.hostIdentity))
      bad("hostIdentity must be dev:ino (a node sets it)");
    return {
      hostPath,
      guestPath,
      readonly: disk.readonly === true,
      volume: disk.volume?.trim(),
      hostIdentity: disk.hostIdentity,
    };
  });
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
