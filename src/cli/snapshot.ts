import { Command } from "commander";
import { statSync } from "node:fs";
import { listSnapshots, pullSnapshot, pushSnapshot, removeSnapshot } from "../snapshot/index.js";
import { collect } from "./flags.js";
import { terminalProgress } from "./pull-progress.js";
import { pushSummary } from "./push.js";
import { formatTable } from "./table.js";

interface RegistryFlags {
  insecureRegistry: string[];
}

const insecureOption = (cmd: Command): Command =>
  cmd.option(
    "--insecure-registry <host>",
    "reach this registry over plain HTTP (repeatable)",
    collect,
    [],
  );

/** Bytes a snapshot takes on disk (its files are sparse). */
function allocatedBytes(paths: readonly string[]): number {
  return paths.reduce((n, p) => n + (statSync(p, { throwIfNoEntry: false })?.blocks ?? 0) * 512, 0);
}

export function snapshotCommand(): Command {
  const cmd = new Command("snapshot");
  cmd
    .command("ls")
    .alias("list")
    .description("list the memory snapshots on this machine")
    .action(() => {
      const rows = [["KEY", "IMAGE", "VCPUS", "MEMORY", "ON DISK", "USED", "ORIGIN"]];
      for (const s of listSnapshots()) {
        const image = s.inputs ? (s.inputs.imagePath.split("/").pop() ?? "") : "?";
        rows.push([
          s.key,
          image.length > 24 ? `${image.slice(0, 21)}...` : image,
          String(s.inputs?.vcpus ?? "?"),
          s.inputs ? `${s.inputs.memoryMb} MB` : "?",
          `${(allocatedBytes([s.statePath, s.memoryPath, s.upperDiskPath]) / 1e6).toFixed(1)} MB`,
          s.usedAt.toISOString().slice(0, 19).replace("T", " "),
          s.origin ?? "local",
        ]);
      }
      process.stdout.write(formatTable(rows));
    });
  insecureOption(
    cmd
      .command("push")
      .description("push a snapshot to a registry as an OCI artifact")
      .argument("<key>", "the snapshot's key (snapshot ls)")
      .argument("<target>", "e.g. registry.example:5000/wheellock/snapshots:default"),
  ).action(async (key: string, target: string, flags: RegistryFlags) => {
    const started = Date.now();
    const progress = terminalProgress(`Pushing snapshot ${key}`);
    const result = await pushSnapshot(key, target, {
      insecureRegistries: flags.insecureRegistry,
      ...(progress ? { progress } : {}),
    });
    process.stdout.write(pushSummary(result, Date.now() - started));
  });
  insecureOption(
    cmd
      .command("pull")
      .description(
        "pull a snapshot another node pushed; refused unless it fits this node's QEMU, kernel, agent, image and accelerator",
      )
      .argument("<ref>", "e.g. registry.example:5000/wheellock/snapshots:default"),
  ).action(async (ref: string, flags: RegistryFlags) => {
    const started = Date.now();
    const r = await pullSnapshot(ref, { insecureRegistries: flags.insecureRegistry });
    process.stdout.write(
      `${r.downloaded ? "Pulled" : "Already here:"} ${r.origin}\nKey: ${r.key}\n` +
        `Image: ${r.snapshot.image.name}, ${r.snapshot.vcpus} vCPU, ${r.snapshot.memoryMb} MB, ${r.snapshot.accel}` +
        ` (${((Date.now() - started) / 1000).toFixed(1)} s)\n`,
    );
  });
  cmd
    .command("rm")
    .alias("remove")
    .description("remove snapshots from this machine")
    .argument("<keys...>")
    .action((keys: string[]) => {
      for (const key of keys) {
        removeSnapshot(key);
        process.stdout.write(`Removed ${key}\n`);
      }
    });
  return cmd;
}
