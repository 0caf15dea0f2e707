import { Command } from "commander";
import { ErrInvalidConfig, ErrVMNotRunning } from "../errors.js";
import { getRecord, LIVE_STATUSES, listRecords, sameProcessAlive } from "../state/index.js";

/** How long `kill` waits (beyond the graceful shutdown) for a supervisor to stop before SIGKILL. */
const STOP_WAIT_MS = 30_000;

async function stopSandbox(id: string): Promise<void> {
  const record = getRecord(id);
  if (!LIVE_STATUSES.has(record.status)) throw new ErrVMNotRunning(`sandbox ${id} is not running`);
  const { supervisorPid: pid, supervisorStartTicks: ticks } = record;
  // The supervisor stops the VM (graceful shutdown included) and records `stopped`.
  process.kill(pid, "SIGTERM");
  const graceMs = STOP_WAIT_MS + (record.config.gracefulShutdownMs ?? 0);
  const deadline = Date.now() + graceMs;
  while (sameProcessAlive(pid, ticks) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // A wedged supervisor: SIGKILL takes QEMU with it (parent-death signal); gc cleans the rest.
  if (sameProcessAlive(pid, ticks)) process.kill(pid, "SIGKILL");
  getRecord(id); // reconcile now, so the record is final when we return
}

export function killCommand(): Command {
  return new Command("kill")
    .description("stop a running sandbox")
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
