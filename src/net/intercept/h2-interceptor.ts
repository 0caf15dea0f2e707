import {
  constants,
  createServer,
  type Http2Server,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from "node:http2";
import type { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import type { ConnectionInfo } from "./admission.js";
import { handleH2Stream, type H2ExchangeDeps } from "./h2-exchange.js";
import { INTERNAL_ERROR } from "./h2-respond.js";

/**
 * What one guest HTTP/2 connection may use. Each limit makes a class of hostile HTTP/2 cost
 * only that connection: streams at once (nghttp2 refuses more), header list size and field
 * count (header floods; nghttp2 also caps CONTINUATION frames per block), nghttp2's memory
 * for the session (Node's `maxSessionMemory`, MB: beyond it new streams are refused), invalid
 * frames and refused streams before the session is torn down.
 */
const GUEST_SETTINGS = {
  maxConcurrentStreams: 100,
  maxHeaderListSize: 64 * 1024,
  enablePush: false,
  // Per stream, how much the guest may send before the proxy has read it.
  initialWindowSize: 256 * 1024,
};
const SESSION_MEMORY_MB = 8;
const MAX_HEADER_PAIRS = 256;
const MAX_INVALID_FRAMES = 100;
const MAX_REJECTED_STREAMS = 100;
/**
 * Streams the guest may reset before their response within one second (rapid reset,
 * CVE-2023-44487): every stream starts policy work and an upstream request, so resetting
 * them in a loop is work for free. nghttp2 has its own, looser limit.
 */
const MAX_EARLY_RESETS_PER_SECOND = 200;
const SESSION_IDLE_MS = 120_000;

/**
 * HTTP/2 toward the guest (ALPN h2 over the intercepted TLS, or h2c with prior knowledge):
 * Node's HTTP/2 server runs on guest connections handed over with `emit("connection")`, and
 * every stream goes through `handleH2Stream`, the HTTP/2 twin of the HTTP/1.1 exchange.
 */
export class H2Interceptor {
  private readonly server: Http2Server;
  private readonly sessions = new Map<ServerHttp2Session, ConnectionInfo>();
  /** Set while `accept` hands a socket over: the server makes its session synchronously. */
  private accepting: ConnectionInfo | undefined;

  constructor(private readonly deps: H2ExchangeDeps) {
    this.server = createServer({
      settings: GUEST_SETTINGS,
      maxSessionMemory: SESSION_MEMORY_MB,
      maxHeaderListPairs: MAX_HEADER_PAIRS,
      maxSessionInvalidFrames: MAX_INVALID_FRAMES,
      maxSessionRejectedStreams: MAX_REJECTED_STREAMS,
    });
    this.server.on("session", (session: ServerHttp2Session) => this.watch(session));
    this.server.on(
      "stream",
      (stream: ServerHttp2Stream, _h: unknown, _f: number, rawHeaders: string[]) => {
        const conn = this.sessions.get(stream.session as ServerHttp2Session);
        if (conn === undefined) return void stream.close(INTERNAL_ERROR);
        stream.on("error", () => undefined); // resets and aborts end the stream; nothing to report
        handleH2Stream(this.deps, conn, stream, rawHeaders).catch(() => {
          if (!stream.destroyed) stream.close(INTERNAL_ERROR);
        });
      },
    );
    this.server.on("sessionError", () => undefined);
  }

  /**
   * Serves HTTP/2 on `socket`: a plain h2c flow, or a server-side TLS socket offering only h2
   * by ALPN. Node's session waits for a client's `secureConnect`, which a server socket never
   * emits, so a TLS socket is handed over once its handshake is done.
   */
  accept(socket: Duplex, conn: ConnectionInfo): void {
    if (!(socket instanceof TLSSocket)) return this.start(socket, conn);
    const failed = (err: Error): void => {
      this.sessionFailed(conn, err);
      socket.destroy();
    };
    socket.once("error", failed);
    socket.once("secure", () => {
      socket.off("error", failed);
      if (socket.alpnProtocol !== "h2") return failed(new Error("ALPN did not select h2"));
      // What Node's own TLS server does before it hands a socket on ('secureConnection').
      (socket as TLSSocket & { secureConnecting: boolean }).secureConnecting = false;
      this.start(socket, conn);
    });
  }

  private start(socket: Duplex, conn: ConnectionInfo): void {
    this.accepting = conn;
    try {
      this.server.emit("connection", socket);
    } finally {
      this.accepting = undefined;
    }
  }

  /** Closes every guest HTTP/2 connection (the sandbox is going away). */
  close(): void {
    for (const session of this.sessions.keys()) session.destroy();
    this.sessions.clear();
  }

  private watch(session: ServerHttp2Session): void {
    const conn = this.accepting;
    if (conn === undefined) return void session.destroy();
    this.sessions.set(session, conn);
    session.once("close", () => this.sessions.delete(session));
    session.on("error", (err: NodeJS.ErrnoException) => this.sessionFailed(conn, err));
    session.setTimeout(SESSION_IDLE_MS, () => session.close());
    let windowStart = Date.now();
    let earlyResets = 0;
    session.on("stream", (stream: ServerHttp2Stream) => {
      stream.once("aborted", () => {
        const now = Date.now();
        if (now - windowStart > 1000) {
          windowStart = now;
          earlyResets = 0;
        }
        if (++earlyResets > MAX_EARLY_RESETS_PER_SECOND && !session.destroyed) {
          this.sessionFailed(conn, new Error("too many streams reset before their response"));
          session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
          session.destroy();
        }
      });
    });
  }

  /** One event for a connection the proxy gave up on (the guest broke the protocol or a limit). */
  private sessionFailed(conn: ConnectionInfo, err: NodeJS.ErrnoException): void {
    if (err.code === "ECONNRESET") return;
    this.deps.events.connectionRefused(conn, `HTTP/2 connection failed: ${err.message}`);
  }
}
