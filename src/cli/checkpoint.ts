/** `wheellock checkpoint ID [NAME]`, `checkpoint ls`, `checkpoint rm NAME`. */
import { Command } from "commander";
import { ErrInvalidConfig } from "../errors.js";
import { listCheckpoints, removeCheckpoint, type CheckpointInfo } from "../sandbox/index.js";
import { addRemoteOption, connectSandbox, type RemoteFlags } from "./remote-flags.js";
import { formatTable } from "./table.js";

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** `/data=@work,/ro:ro (3.1 MB)`: each copy gets private copies of these, never the volume. */
function diskList(
  disks: readonly { guestPath: string; readonly: boolean; volume?: string }[],
  bytes: number,
): string {
  if (disks.length === 0) return "-";
  const each = disks.map(
    (d) =>
      `${d.guestPath}${d.volume !== undefined ? `=@${d.volume}` : ""}${d.readonly ? ":ro" : ""}`,
  );
  return `${each.join(",")} (${megabytes(bytes)})`;
}

export function checkpointSummary(info: CheckpointInfo): string {
  const { sizes } = info;
  return (
    `Checkpoint ${info.name} of ${info.sourceSandboxId}: paused ${info.pausedMs} ms, ` +
    `${(info.durationMs / 1000).toFixed(1)} s in all\n` +
    `State ${megabytes(sizes.stateBytes)}, disk ${megabytes(sizes.upperDataBytes)}` +
    (sizes.mountDataBytes > 0 ? `, mounts ${megabytes(sizes.mountDataBytes)}` : "") +
    (sizes.diskDataBytes > 0 ? `, disks ${megabytes(sizes.diskDataBytes)}` : "") +
    "; " +
    `stored ${megabytes(sizes.newBytes)} new, ${megabytes(sizes.sharedBytes)} shared\n` +
    `Start a copy: wheellock run --from-checkpoint ${info.name} -- CMD\n`
  );
}

export function checkpointCommand(): Command {
  const cmd = new Command("checkpoint")
    .description(
      "save a running sandbox's memory and disk as a named checkpoint (it pauses briefly)",
    )
    .argument("[id]", "sandbox id")
    .argument("[name]", "checkpoint name (default: the sandbox id and a random suffix)");
  addRemoteOption(cmd).action(
    async (id: string | undefined, name: string | undefined, flags: RemoteFlags) => {
      if (id === undefined) throw new ErrInvalidConfig("sandbox id required (or ls, rm)");
      const sandbox = await connectSandbox(id, flags);
      process.stdout.write(checkpointSummary(await sandbox.checkpoint(name)));
    },
  );
  cmd
    .command("ls")
    .alias("list")
    .description("list the checkpoints on this machine")
    .action(() => {
      const rows = [["NAME", "SANDBOX", "CREATED", "MEMORY", "STATE", "DISK", "STORED", "DISKS"]];
      for (const c of listCheckpoints()) {
        rows.push([
          c.name,
          c.sourceSandboxId,
          c.createdAt.slice(0, 19).replace("T", " "),
          `${c.resources.memoryMb} MB`,
          megabytes(c.sizes.stateBytes),
          megabytes(c.sizes.upperDataBytes),
          megabytes(c.sizes.newBytes),
          diskList(c.disks ?? [], c.sizes.diskDataBytes ?? 0),
        ]);
      }
      process.stdout.write(formatTable(rows));
    });
  cmd
    .command("rm")
    .alias("remove")
    .description("remove checkpoints (and the stored data no other checkpoint shares)")
    .argument("<names...>", "checkpoint names")
    .action(async (names: string[]) => {
      for (const name of names) {
        await removeCheckpoint(name);
        process.stdout.write(`Removed ${name}\n`);
      }
    });
  return cmd;
}
