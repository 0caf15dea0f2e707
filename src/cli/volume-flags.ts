import type { Command } from "commander";
import type { SandboxOptions } from "../config/index.js";
import {
  DEFAULT_WORKSPACE,
  parseVolumeMount,
  validateGuestMount,
  type MountConfig,
} from "../config/volumes.js";
import { ErrInvalidConfig } from "../errors.js";
import { collect } from "./flags.js";

export interface VolumeFlags {
  volume?: string[];
  workspace?: string;
}

export function addVolumeOptions(cmd: Command): Command {
  return cmd
    .option(
      "-v, --volume <host:guest[:ro|:overlay|:host_fs]>",
      "mount a host path (default overlay: guest writes never reach the host; ro; host_fs: read-write); relative guest paths are inside the workspace (repeatable)",
      collect,
      [],
    )
    .option(
      "--workspace <path>",
      `guest directory for relative -v paths (default ${DEFAULT_WORKSPACE})`,
    );
}

/** The `-v` list as `mounts`; every spec is checked here so errors name the flag value. */
export function volumeSandboxOptions(flags: VolumeFlags): SandboxOptions {
  const specs = flags.volume ?? [];
  const workspace = validateGuestMount(flags.workspace ?? DEFAULT_WORKSPACE);
  if (specs.length === 0) return {};
  const mounts: Record<string, MountConfig> = {};
  for (const spec of specs) {
    const { guestPath, mount } = parseVolumeMount(spec, workspace);
    if (mounts[guestPath] !== undefined) {
      throw new ErrInvalidConfig(`two volumes are mounted at ${guestPath}`);
    }
    mounts[guestPath] = mount;
  }
  return { mounts };
}
