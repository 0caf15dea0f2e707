import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runDir } from "../paths.js";
import { isSandboxId, pidAlive, processCommandLine, removeTreeSync } from "../util/index.js";
import { LIVE_STATUSES, sandboxesDir } from "./record.js";
import { getRecord, loadRecord } from "./store.js";

export interface GcReport {
  id: string;
  /** Set when nothing was touched because the sandbox is alive. */
  skipped?: string;
  /** What was cleaned, sorted: `qemu`, `run_dir`. */
  cleaned: string[];
  failed: { item: string; error: string }[];
}

function ownerPid(dir: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(join(dir, "owner.pid"), "utf8"), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Cleans what a dead sandbox left: a QEMU that outlived its supervisor (normally the
 * parent-death signal kills it) and the run dir (sockets, writable disk). A QEMU is killed only
 * if its command line names this sandbox's run dir, so a recycled pid is never shot.
 */
function cleanOne(id: string, force: boolean): GcReport {
  const report: GcReport = { id, cleaned: [], failed: [] };
  const record = loadRecord(id) ? getRecord(id) : undefined;
  const dir = join(runDir(), id);
  const owner = ownerPid(dir);
  if (!force) {
    if (record && LIVE_STATUSES.has(record.status)) {
      report.skipped = "sandbox is running";
      return report;
    }
    if (owner !== undefined && pidAlive(owner)) {
      report.skipped = `owned by live process ${owner}`;
      return report;
    }
  }
  const qemuPid = record?.qemuPid;
  if (qemuPid !== undefined && pidAlive(qemuPid) && processCommandLine(qemuPid).includes(dir)) {
    try {
      process.kill(qemuPid, "SIGKILL");
      report.cleaned.push("qemu");
    } catch (err) {
      report.failed.push({ item: "qemu", error: (err as Error).message });
    }
  }
  if (existsSync(dir)) {
    try {
      removeTreeSync(dir);
      report.cleaned.push("run_dir");
    } catch (err) {
      report.failed.push({ item: "run_dir", error: (err as Error).message });
    }
  }
  report.cleaned.sort();
  return report;
}

/** gc one sandbox, or every sandbox with a record or a run dir. */
export function collectGarbage(id?: string, opts: { force?: boolean } = {}): GcReport[] {
  if (id !== undefined) return [cleanOne(id, opts.force === true)];
  const ids = new Set<string>();
  for (const base of [runDir(), sandboxesDir()]) {
    try {
      for (const entry of readdirSync(base)) if (isSandboxId(entry)) ids.add(entry);
    } catch {
      // nothing there yet
    }
  }
  return [...ids].sort().map((each) => cleanOne(each, opts.force === true));
}
