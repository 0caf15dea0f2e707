import { Command } from "commander";
import { getRecord, listRecords, type SandboxRecord } from "../state/index.js";
import { formatTable } from "./table.js";

/** `2006-01-02 15:04` in UTC, as the reference CLI prints CREATED. */
function shortTime(iso: string): string {
  return iso.slice(0, 16).replace("T", " ");
}

function ports(record: SandboxRecord): string {
  return record.ports.map((p) => `${p.address}:${p.localPort}->${p.remotePort}`).join(",") || "-";
}

export function listCommand(): Command {
  return new Command("list")
    .option("--running", "only running sandboxes")
    .option("--json", "print JSON")
    .action((flags: { running?: boolean; json?: boolean }) => {
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
  return new Command("inspect").argument("<id>", "sandbox id").action(async (id: string) => {
    const record = getRecord(id);
    if (record.status === "running") {
      // A running sandbox's usage is asked of it; a stopped one's is in the record.
      let timer: NodeJS.Timeout | undefined;
      const usage = await Promise.race([
        import("../sdk/index.js")
          .then(
            ({ Sandbox }) => Sandbox.connect(id).usage(),
            () => undefined,
          )
          .catch(() => undefined),
        new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), LIVE_USAGE_TIMEOUT_MS);
          timer.unref();
        }),
      ]);
      clearTimeout(timer);
      if (usage) record.usage = usage;
    }
    process.stdout.write(`${JSON.stringify(record, null, 2)}\n`);
  });
}
