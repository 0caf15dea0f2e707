/**
 * Host TCP listeners whose connections go to a guest port: published ports (`run -p`, in the
 * supervisor) and `wheellock port-forward` (in the CLI, through the control socket). Both go
 * through `SandboxApi.openPort`, so they work the same against any kind of sandbox.
 */
import { createServer, type Server, type Socket } from "node:net";
import type { PortConnection, SandboxApi } from "../sandbox/index.js";
import type { PortBinding } from "../state/index.js";

/** Binds a TCP listener; resolves with the port actually bound (for LOCAL 0). */
export function listenTcp(server: Server, address: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: address, port, exclusive: true }, () => {
      server.off("error", reject);
      const bound = server.address();
      resolve(typeof bound === "object" && bound ? bound.port : port);
    });
  });
}

/** Joins a host TCP connection to a guest port connection, half-closes included. */
export function joinTcp(
  socket: Socket,
  conn: PortConnection,
  onError: (err: Error) => void = () => undefined,
): void {
  socket.on("error", () => conn.close());
  conn.connected.then(
    () => {
      socket.pipe(conn.writable);
      conn.readable.pipe(socket);
    },
    (err: Error) => {
      onError(err);
      socket.destroy();
    },
  );
  conn.done.then(
    () => socket.end(),
    () => socket.destroy(),
  );
  socket.once("close", () => conn.close());
}

/** A listener forwarding each connection to guest `127.0.0.1:remotePort`. */
export function forwardingServer(
  sandbox: SandboxApi,
  remotePort: number,
  onError?: (err: Error) => void,
): Server {
  return createServer({ allowHalfOpen: true }, (socket) => {
    try {
      joinTcp(socket, sandbox.openPort(remotePort), onError);
    } catch (err) {
      onError?.(err as Error);
      socket.destroy();
    }
  });
}

/** Published ports (`run -p`): bound by the supervisor for the sandbox's whole life. */
export class PortPublisher {
  private readonly servers: Server[] = [];

  constructor(private readonly sandbox: SandboxApi) {}

  /** Binds every published port; resolves with the bindings as bound. */
  async listenAll(ports: PortBinding[]): Promise<PortBinding[]> {
    const bound: PortBinding[] = [];
    for (const binding of ports) {
      const server = forwardingServer(this.sandbox, binding.remotePort);
      this.servers.push(server);
      const localPort = await listenTcp(server, binding.address, binding.localPort);
      bound.push({ ...binding, localPort });
    }
    return bound;
  }

  close(): void {
    for (const server of this.servers) server.close();
  }
}
