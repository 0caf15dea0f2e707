import type { Command } from "commander";
import { composeCommand, DEFAULT_IMAGE, withEntrypointOverride } from "../config/index.js";
import { ErrInvalidConfig } from "../errors.js";
import type { ImageRuntimeConfig } from "../image/index.js";
import type { ImageSelection } from "../sandbox/index.js";
import { collect } from "./flags.js";
import { terminalProgress } from "./pull-progress.js";

export interface RunImageFlags {
  image?: string;
  pull?: boolean;
  entrypoint?: string;
  platform?: string;
  insecureRegistry: string[];
}

export function addImageOptions(cmd: Command): Command {
  return cmd
    .option("--pull", "pull the image even if it is stored")
    .option("--entrypoint <cmd>", 'replace the image ENTRYPOINT ("" clears it, and CMD)')
    .option("--platform <os/arch>", "platform to pull (default linux/amd64)")
    .option(
      "--insecure-registry <host>",
      "reach this registry over plain HTTP (repeatable)",
      collect,
      [],
    );
}

/**
 * Pulls the image before the sandbox starts when it is not stored (or `--pull`), so the user sees
 * progress; Sandbox.create then finds it in the store.
 */
export async function prepareRunImage(
  flags: RunImageFlags,
): Promise<ImageRuntimeConfig | undefined> {
  const image = flags.image ?? (process.env.WHEELLOCK_IMAGE || DEFAULT_IMAGE);
  if (image === DEFAULT_IMAGE) return undefined;
  // The registry client and tar code load only for OCI images (CLI start-up).
  const { ensureImage, parsePlatform } = await import("../image/index.js");
  const progress = terminalProgress(`Pulling ${image}`);
  const { record } = await ensureImage(image, {
    forcePull: flags.pull === true,
    ...(flags.platform !== undefined ? { platform: parsePlatform(flags.platform) } : {}),
    insecureRegistries: flags.insecureRegistry,
    ...(progress ? { progress } : {}),
  });
  return record.config;
}

/**
 * The command of a long-lived sandbox (`run -d`): ENTRYPOINT/CMD composed as for `run`, but an
 * empty result is allowed (the sandbox then runs nothing and waits for `exec`).
 */
export async function longLivedArgv(flags: RunImageFlags, userArgs: string[]): Promise<string[]> {
  const config = await prepareRunImage(flags);
  const base =
    flags.entrypoint !== undefined ? withEntrypointOverride(config, flags.entrypoint) : config;
  return composeCommand(base, userArgs);
}

/** Docker's rules: ENTRYPOINT + (user args, else CMD); `--entrypoint` replaces both. */
export function runArgv(
  image: ImageSelection,
  userArgs: string[],
  entrypoint: string | undefined,
): string[] {
  const base = image.config;
  const argv = composeCommand(
    entrypoint !== undefined ? withEntrypointOverride(base, entrypoint) : base,
    userArgs,
  );
  if (argv.length === 0)
    throw new ErrInvalidConfig(
      "command required: the image has no ENTRYPOINT or CMD; wheellock run [flags] -- command [args...]",
    );
  return argv;
}
