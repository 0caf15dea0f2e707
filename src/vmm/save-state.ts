import { QmpClient } from "./qmp.js";

const POLL_MS = 20;

/**
 * Pauses the VM and writes its complete state (memory and devices) to `statePath`, for a later
 * QEMU started with `incomingStatePath`. The VM stays paused so the caller can copy its disks
 * in a consistent state; `resume()` on the returned handle continues it.
 */
export async function saveVmState(
  qmpSocketPath: string,
  statePath: string,
  timeoutMs = 60_000,
): Promise<{ resume(): Promise<void> }> {
  const qmp = await QmpClient.connect(qmpSocketPath);
  try {
    await qmp.execute("stop");
    // QEMU's default migration bandwidth cap (128 MiB/s) would dominate a local file save.
    await qmp.execute("migrate-set-parameters", { "max-bandwidth": 64 * 1024 * 1024 * 1024 });
    await qmp.execute("migrate", { uri: `exec:cat > '${statePath.replaceAll("'", "'\\''")}'` });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const info = (await qmp.execute("query-migrate")) as {
        status?: string;
        "error-desc"?: string;
      };
      if (info.status === "completed") break;
      if (info.status === "failed" || info.status === "cancelled") {
        throw new Error(`saving VM state ${info.status}: ${info["error-desc"] ?? "no detail"}`);
      }
      if (Date.now() > deadline) throw new Error(`saving VM state timed out after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } catch (err) {
    qmp.close();
    throw err;
  }
  return {
    async resume() {
      try {
        await qmp.execute("cont");
      } finally {
        qmp.close();
      }
    },
  };
}

/**
 * For a QEMU started with `incomingStatePath`: waits until the saved state is loaded, then
 * starts the guest. (The state was saved from a paused VM, so QEMU does not start it itself.)
 */
export async function resumeIncoming(qmpSocketPath: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let qmp: QmpClient | undefined;
  while (!qmp) {
    try {
      qmp = await QmpClient.connect(qmpSocketPath);
    } catch (err) {
      // QEMU creates the socket shortly after it starts.
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
  try {
    for (;;) {
      const status = (await qmp.execute("query-status")) as { status?: string };
      if (status.status === "running") return;
      if (status.status !== "inmigrate") {
        await qmp.execute("cont");
        return;
      }
      if (Date.now() > deadline)
        throw new Error(`loading VM state timed out after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    qmp.close();
  }
}
