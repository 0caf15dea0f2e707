/** Stopping and removing long-lived sandboxes by id: what `kill` and `rm` do, for the SDK too. */
import { ErrVMNotRunning, WheellockError } from "../errors.js";
import { collectGarbage } from "./gc.js";
import { sameProcessAlive } from "../util/index.js";
import { LIVE_STATUSES } from "./record.js";
import { getRecord, removeRecordDir } from "./store.js";

/** How long `kill` waits (beyond the graceful shutdown) for a supervisor to stop before SIGKILL. */
const STOP_WAIT_MS = 30_000;

/**
 * SIGTERM to the supervisor, which stops the VM (graceful shutdown included) and records
 * `stopped`; a supervisor still alive after the wait is SIGKILLed (QEMU dies with it by its
 * parent-death signal, and `gc` cleans the rest).
 */
export async function stopSandbox(id: string): Promise<void> {
  const record = getRecord(id);
  if (!LIVE_STATUSES.has(record.status)) throw new ErrVMNotRunning(`sandbox ${id} is not running`);
  const { supervisorPid: pid, supervisorStartTicks: ticks } = record;
  process.kill(pid, "SIGTERM");
  await exitOrKill(pid, ticks, STOP_WAIT_MS + (record.config.gracefulShutdownMs ?? 0));
  getRecord(id); // reconcile now, so the record is final when we return
}

/** Waits up to `waitMs` for the process to exit, then SIGKILLs it. */
async function exitOrKill(pid: number, ticks: number, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  while (sameProcessAlive(pid, ticks) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (sameProcessAlive(pid, ticks)) process.kill(pid, "SIGKILL");
}

/**
 * `removeSandbox` once the supervisor of a sandbox that is no longer live has exited: it
 * records `stopped` before its teardown ends (its run dir, a last usage update), and a record
 * removed meanwhile would come back with that last update.
 */
export async function removeSettledSandbox(id: string): Promise<void> {
  const record = getRecord(id);
  if (!LIVE_STATUSES.has(record.status))
    await exitOrKill(record.supervisorPid, record.supervisorStartTicks, STOP_WAIT_MS);
  removeSandbox(id);
}

/** gc, then delete the record and log; refuses a live sandbox. */
export function removeSandbox(id: string): void {
  const record = getRecord(id);
  if (LIVE_STATUSES.has(record.status)) {
    throw new WheellockError(
      "ErrInvalidConfig",
      `cannot remove running sandbox ${id}, kill it first`,
    );
  }
  const [report] = collectGarbage(id);
  const failure = report?.failed[0];
  if (failure)
    throw new WheellockError("ErrSetup", `${id}: failed ${failure.item}: ${failure.error}`);
  removeRecordDir(id);
}
