import { Command } from "commander";
import {
  createVolume,
  listVolumes,
  removeVolume,
  DEFAULT_VOLUME_SIZE_MB,
} from "../volumes/index.js";
import { positiveInteger } from "./flags.js";
import { formatTable } from "./table.js";

const mb = (bytes: number): string => `${(bytes / (1024 * 1024)).toFixed(1)} MB`;

/** `wheellock volume create|ls|rm`: named ext4 volumes for `--disk @NAME:/path`. */
export function volumeCommand(): Command {
  const cmd = new Command("volume");
  cmd
    .command("create")
    .description("create an empty ext4 volume")
    .argument("<name>")
    .option(
      "--size <mb>",
      `size in MB (default ${DEFAULT_VOLUME_SIZE_MB}; sparse: uses disk only as filled)`,
      positiveInteger("--size"),
    )
    .option("--json", "print the volume as JSON")
    .action(async (name: string, flags: { size?: number; json?: boolean }) => {
      const v = await createVolume(name, flags.size ?? DEFAULT_VOLUME_SIZE_MB);
      process.stdout.write(
        flags.json === true
          ? `${JSON.stringify({ name: v.name, size: mb(v.sizeBytes), path: v.path })}\n`
          : `Created volume ${v.name} (${v.sizeBytes / (1024 * 1024)} MB)\n`,
      );
    });
  cmd
    .command("ls")
    .alias("list")
    .description("list volumes")
    .option("--json", "print a JSON array")
    .action(async (flags: { json?: boolean }) => {
      const volumes = await listVolumes();
      if (flags.json === true) {
        const rows = volumes.map((v) => ({ name: v.name, size: mb(v.sizeBytes), path: v.path }));
        process.stdout.write(`${JSON.stringify(rows)}\n`);
        return;
      }
      process.stdout.write(
        formatTable([["NAME", "SIZE"], ...volumes.map((v) => [v.name, mb(v.sizeBytes)])]),
      );
    });
  cmd
    .command("rm")
    .alias("remove")
    .description("delete volumes (refused while a running sandbox has one attached)")
    .argument("<names...>")
    .action(async (names: string[]) => {
      for (const name of names) {
        await removeVolume(name);
        process.stdout.write(`Removed volume ${name.trim()}\n`);
      }
    });
  return cmd;
}
