import { Command } from "commander";
import { ErrInvalidConfig } from "../errors.js";
import { LIVE_STATUSES, listRecords, stopSandbox } from "../state/index.js";
import { addRemoteOption, resolvedRemote, type RemoteFlags } from "./remote-flags.js";

export function killCommand(): Command {
  const cmd = new Command("kill")
    .argument("[id]", "sandbox id")
    .option("--all", "stop every running sandbox");
  return addRemoteOption(cmd).action(
    async (id: string | undefined, flags: { all?: boolean } & RemoteFlags) => {
      // On a node as here: the sandbox stops, its record and log stay until `rm`.
      const onNode = await resolvedRemote(flags);
      const stop = onNode ? (i: string) => onNode.sdk.stopRemote(i, onNode.remote) : stopSandbox;
      if (flags.all) {
        const live = onNode
          ? (await onNode.sdk.listRemote(onNode.remote)).filter((v) => LIVE_STATUSES.has(v.status))
          : listRecords().filter((r) => LIVE_STATUSES.has(r.status));
        await Promise.all(
          live.map((r) =>
            stop(r.id).then(
              () => process.stdout.write(`Killed ${r.id}\n`),
              (err: Error) => process.stderr.write(`Failed to kill ${r.id}: ${err.message}\n`),
            ),
          ),
        );
        return;
      }
      if (id === undefined) throw new ErrInvalidConfig("sandbox id required (or use --all)");
      await stop(id);
      process.stdout.write(`Killed ${id}\n`);
    },
  );
}
