import { Command } from "commander";
import { ErrInvalidConfig } from "../errors.js";
import { LIVE_STATUSES, listRecords, stopSandbox } from "../state/index.js";

export function killCommand(): Command {
  return new Command("kill")
    .argument("[id]", "sandbox id")
    .option("--all", "stop every running sandbox")
    .action(async (id: string | undefined, flags: { all?: boolean }) => {
      if (flags.all) {
        const live = listRecords().filter((r) => LIVE_STATUSES.has(r.status));
        await Promise.all(
          live.map((r) =>
            stopSandbox(r.id).then(
              () => process.stdout.write(`Killed ${r.id}\n`),
              (err: Error) => process.stderr.write(`Failed to kill ${r.id}: ${err.message}\n`),
            ),
          ),
        );
        return;
      }
      if (id === undefined) throw new ErrInvalidConfig("sandbox id required (or use --all)");
      await stopSandbox(id);
      process.stdout.write(`Killed ${id}\n`);
    });
}
