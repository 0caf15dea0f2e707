import { Command } from "commander";
import { getRecord, listRecords, type SandboxRecord } from "../state/index.js";
import { addRemoteOption, resolvedRemote, type RemoteFlags } from "./remote-flags.js";
import { formatTable } from "./table.js";

/** `2006-01-02 15:04` in UTC, as the reference CLI prints CREATED. */
function shortTime(iso: string): string {
  return iso.slice(0, 16).replace("T", " ");
}

function ports(record: SandboxRecord): string {
  return record.ports.map((p) => `${p.address}:${p.localPort}->${p.remotePort}`).join(",") || "-";
}

type ListFlags = { running?: boolean; json?: boolean } & RemoteFlags;

/** `list --remote`: every node's sandboxes, with the node that runs each. */
async function listOnNodes(flags: ListFlags): Promise<boolean> {
  const onNode = await resolvedRemote(flags);
  if (!onNode) return false;
  const views = (await onNode.sdk.listRemote(onNode.remote)).filter(
    (v) => !flags.running || v.status === "running",
  );
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(views, null, 2)}\n`);
    return true;
  }
  const rows = views.map((v) => [v.id, v.status, v.image, shortTime(v.createdAt), v.node]);
  process.stdout.write(formatTable([["ID", "STATUS", "IMAGE", "CREATED", "NODE"], ...rows]));
  return true;
}

export function listCommand(): Command {
  const cmd = new Command("list")
    .option("--running", "only running sandboxes")
    .option("--json", "print JSON");
  return addRemoteOption(cmd).action(async (flags: ListFlags) => {
    if (await listOnNodes(flags)) return;
    const records = listRecords().filter((r) => !flags.running || r.status === "running");
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(records, null, 2)}\n`);
      return;
    }
    const rows = records.map((r) => [
      r.id,
      r.status,
      r.image,
      shortTime(r.createdAt),
      r.status === "running" || r.status === "starting" || r.status === "stopping"
        ? String(r.supervisorPid)
        : "-",
      ports(r),
    ]);
    process.stdout.write(
      formatTable([["ID", "STATUS", "IMAGE", "CREATED", "PID", "PORTS"], ...rows]),
    );
  });
}

/** How long `inspect` waits for a running sandbox's usage before printing without it. */
const LIVE_USAGE_TIMEOUT_MS = 3000;

export function inspectCommand(): Command {
  return addRemoteOption(new Command("inspect").argument("<id>", "sandbox id")).action(
    async (id: string, flags: RemoteFlags) => {
      const onNode = await resolvedRemote(flags);
      if (onNode) {
        // The node adds the usage, asked of the sandbox there as below.
        const shown = await onNode.sdk.inspectRemote(id, onNode.remote);
        return void process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
      }
      const record = getRecord(id);
      // A running sandbox's usage is asked of it; a stopped one's is in the record.
      const { supervisedUsage } = await import("../supervisor/index.js");
      const usage = await supervisedUsage(id, LIVE_USAGE_TIMEOUT_MS);
      if (usage) record.usage = usage;
      process.stdout.write(`${JSON.stringify(record, null, 2)}\n`);
    },
  );
}
