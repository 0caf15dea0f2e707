import { createWriteStream } from "node:fs";
import type { Server, Socket } from "node:net";
import { pipeline } from "node:stream/promises";
import { INCOMING_STATE_FD, SAVE_STATE_FD } from "./qemu-args.js";
import { QmpClient } from "./qmp.js";

const POLL_MS = 10;

/** `ignoreShared`: RAM in a shared memory file stays out of the stream (snapshots copy the file). */
function migrationCapabilities(ignoreShared: boolean): Record<string, unknown> {
  return { capabilities: [{ capability: "x-ignore-shared", state: ignoreShared }] };
}

export interface SavedState {
  /** How long QEMU had the VM stopped for the final pass (it stays stopped until `resume`). */
  downtimeMs: number;
  resume(): Promise<void>;
}

export interface SaveOptions {
  /** Leave RAM backed by a shared file out of the stream (default true: snapshots). */
  ignoreShared?: boolean;
  timeoutMs?: number;
}

/**
 * Saves a running VM's state for a later QEMU started with `incomingStatePath`, as often as
 * asked (a snapshot after the boot, checkpoints later). Built from the VM's QMP monitor
 * (VmSpec.qmpSocketPath) and the listening socket its state is streamed to
 * (VmSpec.saveStateSocketPath). QEMU's seccomp filter forbids `exec:` migration (it spawns a
 * shell), and QEMU 7.2 takes an outgoing `fd:` only by a name passed over the monitor with
 * SCM_RIGHTS, which Node cannot send; so QEMU connects to the socket through its inherited
 * O_PATH descriptor, and this process writes the stream to the file. The socket keeps
 * listening (QEMU's descriptor names that one socket), but a connection is taken only while a
 * save is under way; any other is dropped at once.
 */
export class VmStateSaver {
  private receiving: ((connection: Socket) => void) | undefined;
  private saving = false;

  private constructor(
    private readonly qmp: QmpClient,
    private readonly sink: Server,
  ) {
    sink.on("connection", (connection: Socket) => {
      const take = this.receiving;
      this.receiving = undefined;
      if (take) take(connection);
      else connection.destroy();
    });
  }

  /** A monitor connection QEMU just made (nothing read from it yet). */
  static async attach(qmpSocket: Socket, sink: Server): Promise<VmStateSaver> {
    return new VmStateSaver(await QmpClient.attach(qmpSocket), sink);
  }

  /** A monitor already in use (a restore loaded its state through it). */
  static from(qmp: QmpClient, sink: Server): VmStateSaver {
    return new VmStateSaver(qmp, sink);
  }

  /**
   * Writes the VM's state (devices, and the RAM the options leave in) to `statePath`. The VM
   * keeps running while its memory is copied; QEMU stops it for the final pass, so when this
   * returns the VM is stopped and its disks match the saved memory (the caller copies them
   * now); `resume()` continues it. Because the state was saved from a running VM, a QEMU that
   * loads it starts the guest by itself: restoring needs no QMP round trips.
   */
  async save(statePath: string, options: SaveOptions = {}): Promise<SavedState> {
    if (this.saving) throw new Error("saving VM state: a save is already under way");
    this.saving = true;
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    const qmp = this.qmp;
    let downtimeMs = 0;
    try {
      // QEMU's default migration bandwidth cap (128 MiB/s) would dominate a local save.
      await qmp.execute(
        "migrate-set-capabilities",
        migrationCapabilities(options.ignoreShared ?? true),
      );
      await qmp.execute("migrate-set-parameters", { "max-bandwidth": 64 * 1024 * 1024 * 1024 });
      const written = this.receive(statePath);
      written.catch(() => undefined); // awaited below unless the migration fails first
      try {
        await qmp.execute("migrate", { uri: `unix:/proc/self/fd/${SAVE_STATE_FD}` });
        downtimeMs = await waitForMigration(qmp, deadline);
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
      } finally {
        this.receiving = undefined;
      }
    } catch (err) {
      this.saving = false;
      throw err;
    }
    return {
      downtimeMs,
      resume: async () => {
        try {
          // From "postmigrate": `cont` also reactivates the disks QEMU released at the end.
          await qmp.execute("cont");
        } finally {
          this.saving = false;
        }
      },
    };
  }

  /** Stops accepting state streams and lets go of the monitor (the VM runs on). */
  close(): void {
    this.receiving = undefined;
    if (this.sink.listening) this.sink.close();
    this.qmp.close();
  }

  /** The next connection to the sink is QEMU's (only it can reach the socket): its bytes go to the file. */
  private async receive(statePath: string): Promise<void> {
    const connection = await new Promise<Socket>((resolve) => (this.receiving = resolve));
    await pipeline(connection, createWriteStream(statePath, { mode: 0o600 }));
  }
}

/** Resolves with how long QEMU stopped the VM for the final pass (ms). */
async function waitForMigration(qmp: QmpClient, deadline: number): Promise<number> {
  for (;;) {
    const info = (await qmp.execute("query-migrate")) as {
      status?: string;
      "error-desc"?: string;
      downtime?: number;
    };
    if (info.status === "completed") return info.downtime ?? 0;
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
 * load ends (the state was saved running); a state that fails to load makes QEMU exit. The
 * monitor stays open for later saves (a checkpoint of the restored VM).
 */
export async function startIncoming(socket: Socket, ignoreShared = true): Promise<QmpClient> {
  return QmpClient.attach(socket, [
    { command: "migrate-set-capabilities", args: migrationCapabilities(ignoreShared) },
    { command: "migrate-incoming", args: { uri: `fd:${INCOMING_STATE_FD}` } },
  ]);
}

/**
 * For a restore whose RAM comes in the state stream (a checkpoint): resolves once QEMU has
 * loaded it and the guest runs. `migrate-incoming` returns before the load, which takes
 * seconds for a large stream under TCG; a CONFIGURE sent before then would set the guest's
 * clock to a time that is stale by the time the guest reads it.
 */
export async function waitUntilRunning(qmp: QmpClient, deadline: number): Promise<void> {
  for (;;) {
    const status = (await qmp.execute("query-status")) as { running?: boolean };
    if (status.running === true) return;
    if (Date.now() > deadline) throw new Error("the restored VM did not start running in time");
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
