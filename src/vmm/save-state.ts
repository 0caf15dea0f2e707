import { createWriteStream } from "node:fs";
import type { Server, Socket } from "node:net";
import { pipeline } from "node:stream/promises";
import { INCOMING_STATE_FD, SAVE_STATE_FD } from "./qemu-args.js";
import { QmpClient } from "./qmp.js";

const POLL_MS = 10;

const IGNORE_SHARED_RAM = { capabilities: [{ capability: "x-ignore-shared", state: true }] };

/**
 * Saves a running VM's state for a later QEMU started with `incomingStatePath`. Built from
 * the VM's QMP connection (VmSpec.qmpSocketPath) and the listening socket its state is
 * streamed to (VmSpec.saveStateSocketPath). QEMU's seccomp filter forbids `exec:` migration
 * (it spawns a shell), and QEMU 7.2 takes an outgoing `fd:` only by a name passed over the
 * monitor with SCM_RIGHTS, which Node cannot send; so QEMU connects to the socket through
 * its inherited O_PATH descriptor, and this process writes the stream to the file.
 */
export class VmStateSaver {
  constructor(
    private readonly qmpSocket: Socket,
    private readonly sink: Server,
  ) {}

  /**
   * Writes the VM's state (devices, and any RAM not in a shared memory file) to `statePath`.
   * The VM keeps running while its memory is copied; QEMU stops it for the final pass, so
   * when this returns the VM is stopped and its disks match the saved memory (the caller
   * copies them now); `resume()` continues it. Because the state was saved from a running
   * VM, a QEMU that loads it starts the guest by itself: restoring needs no QMP round trips.
   */
  async save(statePath: string, timeoutMs = 60_000): Promise<{ resume(): Promise<void> }> {
    // RAM backed by a shared file (VmSpec.memoryFile) is left out of the stream: the caller
    // copies that file, and a restore maps it instead of loading it. QEMU's default migration
    // bandwidth cap (128 MiB/s) would dominate a local save.
    const qmp = await QmpClient.attach(this.qmpSocket, [
      { command: "migrate-set-capabilities", args: IGNORE_SHARED_RAM },
      { command: "migrate-set-parameters", args: { "max-bandwidth": 64 * 1024 * 1024 * 1024 } },
    ]);
    try {
      const written = this.receive(statePath);
      written.catch(() => undefined); // awaited below unless the migration fails first
      await qmp.execute("migrate", { uri: `unix:/proc/self/fd/${SAVE_STATE_FD}` });
      const deadline = Date.now() + timeoutMs;
      await waitForMigration(qmp, deadline);
      // QEMU closes the stream when the migration completes; the file is whole after that.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        written,
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error("saving VM state: the stream did not end")),
            Math.max(0, deadline - Date.now()),
          );
        }),
      ]).finally(() => clearTimeout(timer));
    } catch (err) {
      qmp.close();
      throw err;
    } finally {
      this.sink.close();
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

  /** Stops accepting a state stream and lets go of the monitor (the VM runs on). */
  close(): void {
    this.sink.close();
    this.qmpSocket.destroy();
  }

  /** The first connection to the sink is QEMU's (only it can reach the socket): its bytes go to the file. */
  private async receive(statePath: string): Promise<void> {
    const connection = await new Promise<Socket>((resolve) =>
      this.sink.once("connection", resolve),
    );
    this.sink.close();
    await pipeline(connection, createWriteStream(statePath, { mode: 0o600 }));
  }
}

async function waitForMigration(qmp: QmpClient, deadline: number): Promise<void> {
  for (;;) {
    const info = (await qmp.execute("query-migrate")) as {
      status?: string;
      "error-desc"?: string;
    };
    if (info.status === "completed") return;
    if (info.status === "failed" || info.status === "cancelled") {
      // A failed migration leaves the source VM running: nothing to undo.
      throw new Error(`saving VM state ${info.status}: ${info["error-desc"] ?? "no detail"}`);
    }
    if (Date.now() > deadline) {
      await qmp.execute("migrate_cancel").catch(() => undefined);
      throw new Error("saving VM state timed out");
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/**
 * For a QEMU started with `incomingStatePath` (`-incoming defer`) whose monitor is connected
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
