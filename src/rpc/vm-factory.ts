/**
 * The sandboxes `wheellock rpc` creates: VMs in this process (`Sandbox.create`), each with a
 * state record like a detached sandbox's, owned by the rpc process. So `wheellock list`
 * shows them, `log <id>` reads their console, `exec`/`cp` reach them through a control socket
 * while the session runs, `kill <id>` ends the session, and `rm <id>` — which the SDKs run
 * after `close` — finds a stopped sandbox to remove (the reference keeps a state row too).
 */
import { createServer, type Server, type Socket } from "node:net";
import { chmodSync, rmSync } from "node:fs";
import { join } from "node:path";
import { newSandboxId, type SandboxOptions } from "../config/index.js";
import { makePrivateDir, runDir } from "../paths.js";
import { serveConnection } from "../remote/index.js";
import type { VmSandbox } from "../sandbox/index.js";
import { Sandbox } from "../sdk/index.js";
import {
  controlSocketPath,
  logPath,
  newRecord,
  removeRecordDir,
  sandboxDir,
  writeRecord,
  type SandboxRecord,
} from "../state/index.js";
import type { RpcSandbox } from "./context.js";

/** Serves the sandbox protocol on the sandbox's control socket (owner only). */
async function listenControl(vm: VmSandbox, stop: () => Promise<void>): Promise<() => void> {
  const path = controlSocketPath(join(runDir(), vm.id));
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    serveConnection(vm, socket, { stop });
  });
  rmSync(path, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return () => {
    server.close();
    for (const socket of sockets) socket.destroy();
  };
}

/** Boots a sandbox for an rpc session; the session owns it until `close`, `kill` or `discard`. */
export async function createRpcSandbox(options: SandboxOptions): Promise<RpcSandbox> {
  const id = newSandboxId();
  makePrivateDir(sandboxDir(id));
  let vm: VmSandbox;
  try {
    vm = await Sandbox.create(options, { id, consoleLogPath: logPath(id) });
  } catch (err) {
    removeRecordDir(id);
    throw err;
  }
  let record: SandboxRecord = newRecord(vm.config, {
    status: "running",
    ports: [],
    gracefulShutdownMs: 0,
  });
  const update = (patch: Partial<SandboxRecord>): void => {
    record = { ...record, ...patch };
    try {
      writeRecord(record);
    } catch {
      // the record is for `list` and `rm`; the session goes on without it
    }
  };
  update({});
  let ended = false;
  const markStopped = (reason?: string): void => {
    if (ended) return;
    ended = true;
    update({ status: "stopped", ...(reason ? { lastError: reason } : {}) });
  };
  // A stop from outside (timeout_seconds, a crash, `wheellock exec`'s peer asking it to stop).
  void (async () => {
    for await (const event of vm.events())
      if (event.type === "lifecycle" && event.lifecycle.state === "stopped")
        markStopped(event.lifecycle.reason);
  })().catch(() => undefined);
  let stopControl: () => void = () => undefined;
  try {
    stopControl = await listenControl(vm, () => vm.close());
  } catch {
    // `wheellock exec ID` will not reach this sandbox; the session itself is unaffected
  }
  const stopWith = async (how: () => Promise<void>): Promise<void> => {
    stopControl();
    await how();
    markStopped();
  };
  return {
    id,
    api: vm,
    image: vm.image.config,
    logPath: logPath(id),
    close: () => stopWith(() => vm.close()),
    kill: () => stopWith(() => vm.kill()),
    discard: async () => {
      await stopWith(() => vm.kill());
      removeRecordDir(id);
    },
  };
}
