import { Command } from "commander";
import { pushImage, type PushResult } from "../image/index.js";
import { collect, positiveInteger } from "./flags.js";
import { terminalProgress } from "./pull-progress.js";

interface PushFlags {
  insecureRegistry: string[];
  chunkSize?: number;
}

const MIB = 1024 * 1024;

export function pushCommand(): Command {
  return new Command("push")
    .argument("<image>", "a stored image (pulled, imported or built), e.g. myapp:1")
    .argument(
      "[target]",
      "where to push it, e.g. registry.example:5000/team/myapp:1 (default: IMAGE)",
    )
    .option(
      "--insecure-registry <host>",
      "reach this registry over plain HTTP (repeatable)",
      collect,
      [],
    )
    .option(
      "--chunk-size <MiB>",
      "upload blobs bigger than this in chunks of this size (default 16; blobs up to 32 MiB go whole)",
      // 0 would mean 1-byte chunks: millions of requests for one layer.
      positiveInteger("--chunk-size", 1),
    )
    .action(async (image: string, target: string | undefined, flags: PushFlags) => {
      const started = Date.now();
      const progress = terminalProgress(`Pushing ${target ?? image}`);
      const chunk = flags.chunkSize !== undefined ? flags.chunkSize * MIB : undefined;
      const result = await pushImage(image, target, {
        insecureRegistries: flags.insecureRegistry,
        ...(progress ? { progress } : {}),
        ...(chunk !== undefined ? { chunkSizeBytes: chunk, monolithicMaxBytes: chunk } : {}),
      });
      process.stdout.write(pushSummary(result, Date.now() - started));
    });
}

/** What `push` and `snapshot push` print: where, the digest, and what moved. */
export function pushSummary(result: PushResult, elapsedMs: number): string {
  const count = (o: string): number => result.blobs.filter((b) => b.outcome === o).length;
  return (
    `Pushed ${result.reference}\nDigest: ${result.digest}\n` +
    `Size: ${(result.sizeBytes / 1e6).toFixed(1)} MB, sent ${(result.uploadedBytes / 1e6).toFixed(1)} MB ` +
    `in ${(elapsedMs / 1000).toFixed(1)} s (blobs: ${count("uploaded")} uploaded, ` +
    `${count("mounted")} mounted, ${count("exists")} already there)\n`
  );
}
