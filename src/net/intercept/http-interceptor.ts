import { createServer, type Server } from "node:http";
import type { Duplex } from "node:stream";
import type { ConnectionInfo } from "./admission.js";
import { writeRawResponse } from "./headers.js";
import { handleRequest, type ExchangeDeps } from "./http-exchange.js";
import { handleUpgrade } from "./upgrade.js";

/**
 * Node's HTTP/1.1 server machinery on guest connections that never touch a listening socket:
 * each decrypted or plain guest stream is handed over with `emit("connection")`, so parsing,
 * keep-alive and pipelining are Node's, and malformed input becomes a 400 for that connection
 * only.
 */
export class HttpInterceptor {
  private readonly server: Server;
  private readonly connections = new WeakMap<Duplex, ConnectionInfo>();
  /** Connections already refused for a parse error (Node reports it again for every chunk). */
  private readonly refused = new WeakSet<Duplex>();

  constructor(private readonly deps: ExchangeDeps) {
    // Host is checked by admission, which reports an event; Node's own check would not.
    this.server = createServer({ requireHostHeader: false, maxHeaderSize: 64 * 1024 });
    this.server.keepAliveTimeout = 120_000;
    // A guest that half-closes after its request (HTTP/1.0 style, `nc -N`) still gets the
    // response; Node aborts pending requests on FIN otherwise. The switch is Node's internal
    // (`_http_server.js`, Node 14-24); the half-close test fails if it ever goes away.
    (this.server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    this.server.headersTimeout = 0;
    this.server.requestTimeout = 0;
    this.server.on("request", (req, res) => {
      const conn = this.connections.get(req.socket);
      if (!conn) return void res.destroy();
      handleRequest(this.deps, conn, req, res).catch(() => res.destroy());
    });
    const upgrade = (req: Parameters<typeof handleUpgrade>[2], socket: Duplex, head: Buffer) => {
      const conn = this.connections.get(socket);
      if (!conn) return void socket.destroy();
      handleUpgrade(this.deps, conn, req, socket, head).catch(() => socket.destroy());
    };
    this.server.on("upgrade", upgrade);
    // CONNECT arrives here, not as a request; admission refuses it with an event.
    this.server.on("connect", upgrade);
    this.server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) =>
      this.clientError(err, socket),
    );
  }

  accept(socket: Duplex, conn: ConnectionInfo): void {
    this.connections.set(socket, conn);
    this.server.emit("connection", socket);
  }

  private clientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    // Node's parser stays in its error state and reports it again for every later chunk and
    // at the end: one 400, one event, one timer per connection, however much the guest sends.
    if (this.refused.has(socket)) return;
    this.refused.add(socket);
    const conn = this.connections.get(socket);
    if (conn && err.code !== "ECONNRESET") {
      const reason = `malformed HTTP or TLS from the guest (${err.code ?? "error"}): ${err.message}`;
      this.deps.events.connectionRefused(conn, reason);
      const body = Buffer.from("Bad request\n");
      writeRawResponse(
        socket,
        400,
        "Bad Request",
        [
          ["Content-Type", "text/plain"],
          ["Content-Length", String(body.length)],
          ["Connection", "close"],
        ],
        body,
      );
      // Let the 400 reach the guest before the connection goes.
      const timer = setTimeout(() => socket.destroy(), 5000).unref();
      socket.once("finish", () => {
        clearTimeout(timer);
        socket.destroy();
      });
      return;
    }
    socket.destroy();
  }

  close(): void {
    this.server.closeAllConnections();
  }
}
