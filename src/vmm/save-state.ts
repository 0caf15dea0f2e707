import type { Socket } from "node:net";
import { INCOMING_STATE_FD } from "./qemu-args.js";
import { QmpClient } from "./qmp.js";

const POLL_MS = 10;

const IGNORE_SHARED_RAM = { capabilities: [{ capability: "x-ignore-shared", state: true }] };

/**
 * Writes the running VM's state (devices, and any RAM not in a shared memory file) to
 * `statePath`, for a later QEMU started with `incomingStatePath`. The VM keeps running while its memory is copied; QEMU
 * stops it for the final pass, so when this returns the VM is stopped and its disks match
 * the saved memory (the caller copies them now); `resume()` on the returned handle continues
 * it. Because the state was saved from a running VM, a QEMU that loads it starts the guest by
 * itself: restoring needs no QMP round trips at all.
 */
export async function saveVmState(
  qmpSocketPath: string,
  statePath: string,
  timeoutMs = 60_000,
): Promise<{ resume(): Promise<void> }> {
  const qmp = await QmpClient.connect(qmpSocketPath);
  try {
    // RAM backed by a shared file (VmSpec.memoryFile) is left out of the stream: the caller
    // copies that file, and a restore maps it instead of loading it.
    await qmp.execute("migrate-set-capabilities", IGNORE_SHARED_RAM);
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
        // A failed migration leaves the source VM running: nothing to undo.
        throw new Error(`saving VM state ${info.status}: ${info["error-desc"] ?? "no detail"}`);
      }
      if (Date.now() > deadline) {
        await qmp.execute("migrate_cancel").catch(() => undefined);
        throw new Error(`saving VM state timed out after ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } catch (err) {
    qmp.close();
    throw err;
  }
  return {
    async resume() {
      try {
        // From "postmigrate": `cont` also reactivates the disks QEMU released at the end.
        await qmp.execute("cont");
      } finally {
        qmp.close();
      }
    },
  };
}

/**
 * For a QEMU started with `incomingStatePath` (`-incoming defer`) that connected its monitor
 * to us (`socket`): the same capabilities as the saving side, then load the state from the
 * inherited fd, all in one round trip (QmpClient.attach). The guest starts by itself when the
 * load ends (the state was saved running); a state that fails to load makes QEMU exit.
 */
export async function startIncoming(socket: Socket): Promise<void> {
  const qmp = await QmpClient.attach(socket, [
    { command: "migrate-set-capabilities", args: IGNORE_SHARED_RAM },
    { command: "migrate-incoming", args: { uri: `fd:${INCOMING_STATE_FD}` } },
  ]);
  qmp.close();
}
