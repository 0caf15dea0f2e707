import type { Command } from "commander";
import {
  DEFAULT_WORKSPACE,
  parseDiskSpec,
  parseVolumeMount,
  validateGuestMount,
  type MountConfig,
  type SandboxOptions,
} from "../config/index.js";
import { ErrInvalidConfig } from "../errors.js";
import { collect } from "./flags.js";

export interface VolumeFlags {
  volume?: string[];
  disk?: string[];
  workspace?: string;
  keepOverlay?: boolean;
}

export function addVolumeOptions(cmd: Command): Command {
  return cmd
    .option(
      "-v, --volume <host:guest[:ro|:overlay|:host_fs][,size=MB][,inodes=N]>",
      "mount a host directory or single file (default overlay: guest writes never reach the host and take at most --disk-size, or size=MB; ro; host_fs: read-write, unbounded unless size= or inodes= is given); relative guest paths are inside the workspace (repeatable)",
      collect,
      [],
    )
    .option(
      "--workspace <path>",
      `guest directory -v paths must lie in; relative -v paths are inside it (default ${DEFAULT_WORKSPACE}; / allows any absolute path)`,
    )
    .option(
      "--disk <image:guest[:ro]>",
      "attach an ext4 image file, or a named volume as @NAME, as a block device mounted at an absolute guest path; data outlives the sandbox (repeatable)",
      collect,
      [],
    )
    .option(
      "--keep-overlay",
      "keep the upper layer of every overlay -v mount (the guest's changes) after the sandbox ends; its path is printed on stderr",
    );
}

/** The `-v` list as `mounts` and the `--disk` list as `disks`; errors name the flag value. */
export function volumeSandboxOptions(flags: VolumeFlags, remote = false): SandboxOptions {
  const specs = flags.volume ?? [];
  // `--workspace /` lifts the within-workspace rule: -v may then mount at any absolute path
  // (each mount point itself must still be a valid, non-root guest path).
  const workspace =
    flags.workspace === "/" ? "/" : validateGuestMount(flags.workspace ?? DEFAULT_WORKSPACE);
  const disks = (flags.disk ?? []).map((spec) => parseDiskSpec(spec, process.cwd(), remote));
  const options: SandboxOptions = disks.length > 0 ? { disks } : {};
  if (specs.length === 0) {
    if (flags.keepOverlay === true) throw new ErrInvalidConfig("--keep-overlay needs a -v mount");
    return options;
  }
  const mounts: Record<string, MountConfig> = {};
  for (const spec of specs) {
    const { guestPath, mount } = parseVolumeMount(spec, workspace, process.cwd(), remote);
    if (mounts[guestPath] !== undefined) {
      throw new ErrInvalidConfig(`two volumes are mounted at ${guestPath}`);
    }
    mounts[guestPath] =
      flags.keepOverlay === true && mount.type === "overlay"
        ? { ...mount, keepUpper: true }
        : mount;
  }
  return { ...options, mounts };
}

/** After the sandbox closed: where each kept overlay layer is (stderr: stdout is the guest's). */
export function reportKeptOverlays(kept: Readonly<Record<string, string>>): void {
  for (const [guestPath, dir] of Object.entries(kept)) {
    process.stderr.write(`wheellock: kept overlay upper layer of ${guestPath}: ${dir}\n`);
  }
}
