/**
 * Sandboxes a node serves through supervisors (`startSupervisor`, as `run -d` does): each VM
 * lives in its own process, so a restart of `serve` — an upgrade, a crash — leaves them
 * running, and the restarted node finds them again from the files it keeps under
 * `<data dir>/serve/sandboxes/` (only sandboxes this node created are served, never those
 * the local CLI started). An operation is relayed byte for byte to the supervisor's control
 * socket, so backpressure runs end to end through the pipes.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { planSandbox, type SandboxOptions } from "../config/index.js";
import { ErrCapacity, ErrVMNotFound } from "../errors.js";
import { dataDir, makePrivateDir } from "../paths.js";
import {
  getRecord,
  LIVE_STATUSES,
  loadRecord,
  reconcile,
  removeSettledSandbox,
  stopSandbox,
  type SandboxRecord,
} from "../state/index.js";
import { startSupervisor, supervisedUsage, unixConnector } from "../supervisor/index.js";
import type { SandboxUsage } from "../observe/index.js";
import { controlSocketPath, logPath } from "../state/index.js";
import { readRingLog, type LogCursor } from "./log-slice.js";
import { prepareRelay } from "./relay.js";
import { runDir } from "../paths.js";
import { isSandboxId } from "../util/index.js";
import {
  holdsResources,
  type HostedSandbox,
  type PreparedOperation,
  type SandboxHost,
} from "./host.js";

interface Owned {
  id: string;
  createdAt: string;
}

function ownedDir(): string {
  return join(dataDir(), "serve", "sandboxes");
}

function hosted(owned: Owned, record: SandboxRecord | undefined): HostedSandbox {
  return {
    id: owned.id,
    createdAt: owned.createdAt,
    // A record not written yet: the supervisor is still being spawned.
    status: record?.status ?? "starting",
    image: record?.image ?? "",
    vcpus: Math.ceil(record?.config.cpus ?? 0),
    memoryMb: record?.config.memoryMb ?? 0,
    config: record?.config ?? ({} as SandboxRecord["config"]),
    ...(record?.lastError !== undefined ? { lastError: record.lastError } : {}),
  };
}

export class SupervisedHost implements SandboxHost {
  /** Creates under way, counted against the limit before their records exist. */
  private starting = 0;

  constructor(private readonly maxSandboxes: number) {}

  async create(options: SandboxOptions, command: readonly string[]): Promise<HostedSandbox> {
    // Checked with the node's own defaults (WHEELLOCK_IMAGE, ...), CPU count and id.
    const plan = planSandbox(options, process.env, availableParallelism());
    const live = this.list().filter((s) => holdsResources(s.status)).length;
    if (live + this.starting >= this.maxSandboxes)
      throw new ErrCapacity(`this node runs its limit of ${this.maxSandboxes} sandboxes`);
    const owned: Owned = { id: plan.id, createdAt: new Date().toISOString() };
    makePrivateDir(ownedDir());
    writeFileSync(join(ownedDir(), `${plan.id}.json`), JSON.stringify(owned), { mode: 0o600 });
    this.starting++;
    try {
      await startSupervisor(
        { plan, command: [...command], ports: [], gracefulShutdownMs: 0 },
        "options",
      );
    } catch (err) {
      this.forget(plan.id);
      throw err;
    } finally {
      this.starting--;
    }
    return hosted(owned, loadRecord(plan.id));
  }

  list(): HostedSandbox[] {
    let names: string[];
    try {
      names = readdirSync(ownedDir());
    } catch {
      return [];
    }
    const out: HostedSandbox[] = [];
    for (const name of names) {
      const owned = this.readOwned(name.replace(/\.json$/, ""));
      if (owned) out.push(owned);
    }
    return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  find(id: string): HostedSandbox | undefined {
    return isSandboxId(id) ? this.readOwned(id) : undefined;
  }

  prepareOperation(id: string): PreparedOperation {
    return prepareRelay(unixConnector(controlSocketPath(join(runDir(), id)), id));
  }

  readLog(id: string, cursor: LogCursor, maxBytes: number): { data: Buffer; cursor: LogCursor } {
    return readRingLog(logPath(id), cursor, maxBytes);
  }

  async usage(id: string, timeoutMs: number): Promise<SandboxUsage | undefined> {
    // No record yet (still being spawned): nothing used so far worth reporting.
    return this.find(id) && loadRecord(id) ? supervisedUsage(id, timeoutMs) : undefined;
  }

  async stop(id: string): Promise<void> {
    if (!this.find(id)) throw new ErrVMNotFound(id);
    await stopSandbox(id);
  }

  async remove(id: string): Promise<void> {
    const owned = this.find(id);
    if (!owned) throw new ErrVMNotFound(id);
    const record = loadRecord(id);
    if (record && LIVE_STATUSES.has(reconcile(record).status)) await stopSandbox(id);
    if (loadRecord(id)) await removeSettledSandbox(id);
    this.forget(id);
  }

  async close(): Promise<void> {
    // The supervisors own the sandboxes; they keep running for the next `serve`.
  }

  private readOwned(id: string): HostedSandbox | undefined {
    if (!isSandboxId(id)) return undefined;
    let owned: Owned;
    try {
      owned = JSON.parse(readFileSync(join(ownedDir(), `${id}.json`), "utf8")) as Owned;
    } catch {
      return undefined;
    }
    let record: SandboxRecord | undefined;
    try {
      record = getRecord(id);
    } catch {
      record = undefined;
    }
    return hosted(owned, record);
  }

  private forget(id: string): void {
    rmSync(join(ownedDir(), `${id}.json`), { force: true });
  }
}
