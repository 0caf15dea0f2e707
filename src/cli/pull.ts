import { Command } from "commander";
import { ensureImage, familiarRepository, parsePlatform } from "../image/index.js";
import { collect } from "./flags.js";
import { terminalProgress } from "./pull-progress.js";

interface PullFlags {
  platform?: string;
  insecureRegistry: string[];
}

export function pullCommand(): Command {
  return new Command("pull")
    .argument("<image>", "image reference, e.g. alpine:3.20 or ghcr.io/org/img@sha256:...")
    .option(
      "--platform <os/arch>",
      "platform to pull from a multi-platform image (default linux/amd64)",
    )
    .option(
      "--insecure-registry <host>",
      "reach this registry over plain HTTP (repeatable)",
      collect,
      [],
    )
    .action(async (image: string, flags: PullFlags) => {
      const started = Date.now();
      const progress = terminalProgress(`Pulling ${image}`);
      const { record } = await ensureImage(image, {
        forcePull: true,
        allowOtherPlatform: flags.platform !== undefined,
        ...(flags.platform !== undefined ? { platform: parsePlatform(flags.platform) } : {}),
        insecureRegistries: flags.insecureRegistry,
        ...(progress ? { progress } : {}),
      });
      process.stdout.write(
        `${familiarRepository(record)}${record.tag ? `:${record.tag}` : ""}\n` +
          `Digest: ${record.digest}\nPlatform: ${record.platform}\n` +
          `Size: ${(record.sizeBytes / 1e6).toFixed(1)} MB (rootfs ${(record.rootfsSizeBytes / 1e6).toFixed(1)} MB) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
      );
    });
}
