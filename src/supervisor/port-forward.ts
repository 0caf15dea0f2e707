/**
 * Published ports (`run -p`): host listeners whose connections become PORT_FORWARD streams,
 * and the control-socket side of `wheellock port-forward`, which tunnels each connection of
 * the CLI's own listeners through the supervisor.
 */
import { createServer, type Server, type Socket } from "node:net";
import type { PortStream } from "../channel/index.js";
import type { Sandbox } from "../sandbox/index.js";
import type { PortBinding } from "../state/index.js";
import { wireError } from "./wire-error.js";
import { encodeJson, encodeMessage, Msg, type Message } from "./wire.js";

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

/** Joins a host TCP connection to a guest port stream, half-closes included. */
export function joinTcp(socket: Socket, stream: PortStream): void {
  socket.on("error", () => stream.close());
  stream.connected.then(
    () => {
      socket.pipe(stream.writable);
      stream.readable.pipe(socket);
    },
    () => socket.destroy(),
  );
  stream.done.then(
    () => socket.end(),
    () => socket.destroy(),
  );
  socket.once("close", () => stream.close());
}

export class PortForwarder {
  private readonly servers: Server[] = [];

  constructor(private readonly sandbox: Sandbox) {}

  /** Binds every published port; resolves with the bindings as bound. */
  async listenAll(ports: PortBinding[]): Promise<PortBinding[]> {
    const bound: PortBinding[] = [];
    for (const binding of ports) {
      const server = createServer({ allowHalfOpen: true }, (socket) => {
        try {
          joinTcp(socket, this.sandbox.openPort(binding.remotePort));
        } catch {
          socket.destroy();
        }
      });
      this.servers.push(server);
      const localPort = await listenTcp(server, binding.address, binding.localPort);
      bound.push({ ...binding, localPort });
    }
    return bound;
  }

  /** Serves a `port-forward` control connection: raw bytes both ways, EOF each way. */
  relay(socket: Socket, port: number): (msg: Message) => void {
    const stream = this.sandbox.openPort(port);
    stream.connected.then(
      () => socket.write(encodeJson(Msg.Started, {})),
      () => undefined,
    );
    stream.readable.on("data", (chunk: Buffer) => {
      if (!socket.write(encodeMessage(Msg.Stdout, chunk))) {
        stream.readable.pause();
        socket.once("drain", () => stream.readable.resume());
      }
    });
    stream.readable.once("end", () => socket.write(encodeMessage(Msg.Eof)));
    stream.done.then(
      () => socket.end(encodeJson(Msg.Result, {})),
      (err: unknown) => socket.end(encodeJson(Msg.Error, wireError(err))),
    );
    socket.once("close", () => stream.close());
    return (msg) => {
      if (msg.type !== Msg.Stdin) return;
      if (msg.payload.length === 0) stream.writable.end();
      else if (!stream.writable.write(msg.payload)) {
        socket.pause();
        stream.writable.once("drain", () => socket.resume());
      }
    };
  }

  close(): void {
    for (const server of this.servers) server.close();
  }
}
