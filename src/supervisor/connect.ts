/** `Sandbox.connect(id)`: the SandboxApi of a long-lived sandbox, through its control socket. */
import { connect as connectUnix } from "node:net";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { ErrVMNotRunning } from "../errors.js";
import { runDir } from "../paths.js";
import { RemoteSandbox, type Connector } from "../remote/index.js";
import { controlSocketPath, getRecord } from "../state/index.js";

/** Connections to a unix socket; a missing or refusing socket means the sandbox is gone. */
export function unixConnector(socketPath: string, id: string): Connector {
  return () =>
    new Promise<Duplex>((resolve, reject) => {
      const socket = connectUnix(socketPath);
      const onError = (err: NodeJS.ErrnoException) =>
        reject(
          err.code === "ENOENT" || err.code === "ECONNREFUSED"
            ? new ErrVMNotRunning(`sandbox ${id} is not running (its control socket is gone)`)
            : err,
        );
      socket.once("error", onError);
      socket.once("connect", () => {
        socket.off("error", onError);
        resolve(socket);
      });
    });
}

/** Attaches to a running long-lived sandbox; ErrVMNotFound or ErrVMNotRunning otherwise. */
export function connectSupervised(id: string): RemoteSandbox {
  const record = getRecord(id);
  if (record.status !== "running") {
    throw ErrVMNotRunning.withStatus(id, record.status, record.lastError);
  }
  return new RemoteSandbox(id, unixConnector(controlSocketPath(join(runDir(), id)), id));
}
