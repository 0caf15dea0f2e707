import { Command } from "commander";
import { ErrInvalidConfig, WheellockError } from "../errors.js";
import {
  collectGarbage,
  getRecord,
  LIVE_STATUSES,
  listRecords,
  removeSandbox,
  removeSettledSandbox,
  type GcReport,
} from "../state/index.js";
import { addRemoteOption, resolvedRemote, type RemoteFlags } from "./remote-flags.js";

function printReport(report: GcReport): boolean {
  if (report.skipped) process.stdout.write(`${report.id}: skipped (${report.skipped})\n`);
  else if (report.cleaned.length > 0)
    process.stdout.write(`${report.id}: cleaned ${report.cleaned.join(", ")}\n`);
  else if (report.failed.length === 0)
    process.stdout.write(`${report.id}: no resources to clean\n`);
  for (const f of report.failed)
    process.stderr.write(`${report.id}: failed ${f.item}: ${f.error}\n`);
  return report.failed.length === 0;
}

export function gcCommand(): Command {
  return new Command("gc")
    .argument("[id]", "only this sandbox")
    .option("--force-running", "also clean sandboxes that look alive")
    .action((id: string | undefined, flags: { forceRunning?: boolean }) => {
      if (id !== undefined) getRecord(id);
      const reports = collectGarbage(id, { force: flags.forceRunning === true });
      const ok = reports.map(printReport).every(Boolean);
      if (id === undefined) process.stdout.write(`Reconciled ${reports.length} sandboxes\n`);
      if (!ok) process.exitCode = 1;
    });
}

export function rmCommand(): Command {
  const cmd = new Command("rm")
    .argument("[ids...]", "sandbox ids")
    .option("--stopped", "remove every sandbox that is not running");
  return addRemoteOption(cmd).action(
    async (ids: string[], flags: { stopped?: boolean } & RemoteFlags) => {
      const onNode = await resolvedRemote(flags);
      const records = onNode ? await onNode.sdk.listRemote(onNode.remote) : listRecords();
      const targets = flags.stopped
        ? records.filter((r) => !LIVE_STATUSES.has(r.status)).map((r) => r.id)
        : ids;
      if (targets.length === 0 && !flags.stopped) {
        throw new ErrInvalidConfig("sandbox id required (or use --stopped)");
      }
      for (const id of targets) {
        if (onNode) {
          // A node refuses nothing here: removing a running sandbox there stops it first,
          // so check as `rm` does locally.
          const view = records.find((r) => r.id === id || r.id.startsWith(`${id}@`));
          if (view && LIVE_STATUSES.has(view.status))
            throw new ErrInvalidConfig(`cannot remove running sandbox ${id}, kill it first`);
          await onNode.sdk.removeRemote(id, onNode.remote);
        } else await removeSettledSandbox(id);
        process.stdout.write(`Removed ${id}\n`);
      }
    },
  );
}

export function pruneCommand(): Command {
  return new Command("prune").action(() => {
    let pruned = 0;
    const errors: string[] = [];
    for (const record of listRecords()) {
      if (LIVE_STATUSES.has(record.status)) continue;
      try {
        removeSandbox(record.id);
        pruned++;
        process.stdout.write(`Pruned ${record.id}\n`);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    // Run dirs of one-shot sandboxes whose process died also go.
    collectGarbage();
    process.stdout.write(`Pruned ${pruned} sandboxes\n`);
    if (errors.length > 0) throw new WheellockError("ErrSetup", errors.join("; "));
  });
}
