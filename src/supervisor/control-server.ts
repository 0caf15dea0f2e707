/**
 * A supervisor's control socket: a unix socket in the sandbox's run dir (owner-only), each
 * connection one operation of the sandbox protocol (src/remote) on the supervised sandbox.
 */
import { chmodSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { serveConnection } from "../remote/index.js";
import type { ExecProcess, SandboxApi } from "../sandbox/index.js";

export class ControlServer {
  private readonly server: Server;
  private readonly procs = new Set<ExecProcess>();
  private readonly sockets = new Set<Socket>();

  private constructor(
    sandbox: SandboxApi,
    /** `stop` asked for; resolves once the sandbox has stopped. */
    stop: () => Promise<void>,
  ) {
    this.server = createServer((socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
      serveConnection(sandbox, socket, {
        stop,
        trackExec: (proc) => {
          this.procs.add(proc);
          return () => this.procs.delete(proc);
        },
      });
    });
  }

  static async listen(
    sandbox: SandboxApi,
    path: string,
    stop: () => Promise<void>,
  ): Promise<ControlServer> {
    rmSync(path, { force: true });
    const control = new ControlServer(sandbox, stop);
    await new Promise<void>((resolve, reject) => {
      control.server.once("error", reject);
      control.server.listen(path, () => resolve());
    });
    // Anyone who can connect can run commands in the sandbox: owner only.
    chmodSync(path, 0o600);
    return control;
  }

  /** Commands running through this server (for a graceful shutdown). */
  get running(): ReadonlySet<ExecProcess> {
    return this.procs;
  }

  /** Stops accepting connections; those open stay until `disconnectAll`. */
  stopAccepting(): void {
    this.server.close();
  }

  disconnectAll(): void {
    this.server.close();
    for (const socket of this.sockets) socket.destroy();
  }
}
