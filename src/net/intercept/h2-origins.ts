import { connect as h2connect, type ClientHttp2Session } from "node:http2";
import { isIPv4, connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import type { HttpRequestHead } from "./contract.js";
import { defaultPort } from "./admission.js";
import type { HostDialer } from "./upstream-dial.js";

/** How an HTTP/2 request from the guest goes upstream. */
export type Origin = { kind: "h2"; session: ClientHttp2Session } | { kind: "h1" };

/** An origin whose TLS handshake chose HTTP/1.1 is not asked again for this long. */
const H1_ONLY_MS = 10 * 60_000;
/** An upstream session with no stream open for this long is closed. */
const IDLE_SESSION_MS = 60_000;
/** nghttp2's memory for one upstream session, MB (Node's unit); beyond it new streams fail. */
const SESSION_MEMORY_MB = 16;
/** Kept per origin key; each entry is a pending or open session. */
const MAX_ORIGINS = 256;

/**
 * Upstream HTTP/2 sessions, one per origin, shared by every guest stream to that origin (as a
 * browser would). Dials go through the dialer's resolver and address check like every other
 * upstream connection; TLS is verified against the same trust store, with ALPN offering h2
 * and HTTP/1.1: an origin that picks HTTP/1.1 is served by the HTTP/1.1 path instead. A guest
 * that spoke h2c (prior knowledge) gets h2c upstream: it has told us the port speaks it.
 */
export class H2Origins {
  private readonly sessions = new Map<string, Promise<Origin>>();
  private readonly h1Only = new Map<string, number>();
  private closed = false;

  constructor(private readonly dialer: HostDialer) {}

  /** Rejects with DialRefused (policy) or an Error (network, TLS). */
  open(head: HttpRequestHead): Promise<Origin> {
    const key = `${head.scheme}://${head.host}:${head.port}`;
    const until = this.h1Only.get(key);
    if (until !== undefined && until > Date.now()) return Promise.resolve({ kind: "h1" });
    const known = this.sessions.get(key);
    if (known !== undefined) return known;
    if (this.closed) return Promise.reject(new Error("the proxy is closing"));
    if (this.sessions.size >= MAX_ORIGINS) this.evictOne();
    const opening = this.dial(head).then(
      (origin) => {
        if (origin.kind === "h1") {
          this.sessions.delete(key);
          this.h1Only.set(key, Date.now() + H1_ONLY_MS);
        } else this.track(key, origin.session, opening);
        return origin;
      },
      (err: unknown) => {
        this.sessions.delete(key);
        throw err;
      },
    );
    this.sessions.set(key, opening);
    return opening;
  }

  close(): void {
    this.closed = true;
    for (const pending of this.sessions.values())
      pending.then((o) => o.kind === "h2" && o.session.destroy()).catch(() => undefined);
    this.sessions.clear();
  }

  private evictOne(): void {
    const [key, oldest] = this.sessions.entries().next().value as [string, Promise<Origin>];
    this.sessions.delete(key);
    oldest.then((o) => o.kind === "h2" && o.session.close()).catch(() => undefined);
  }

  private track(key: string, session: ClientHttp2Session, entry: Promise<Origin>): void {
    const forget = (): void => {
      if (this.sessions.get(key) === entry) this.sessions.delete(key);
    };
    session.once("close", forget);
    session.once("goaway", forget);
    session.on("error", forget);
    session.setTimeout(IDLE_SESSION_MS, () => session.close());
    if (this.closed) session.destroy();
  }

  private async dial(head: HttpRequestHead): Promise<Origin> {
    const address = await this.dialer.resolveChecked(head.host);
    const socket = await this.connect(head, address);
    if (head.scheme === "https" && (socket as import("node:tls").TLSSocket).alpnProtocol !== "h2") {
      socket.destroy();
      return { kind: "h1" };
    }
    const port = head.port === defaultPort(head.scheme) ? "" : `:${head.port}`;
    const session = h2connect(`${head.scheme}://${head.host}${port}`, {
      createConnection: () => socket,
      maxSessionMemory: SESSION_MEMORY_MB,
      settings: { enablePush: false },
    });
    return { kind: "h2", session };
  }

  /** A connected socket (TLS handshake done, certificate verified for the host name). */
  private connect(head: HttpRequestHead, address: string): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const tls = head.scheme === "https";
      const socket: Socket = tls
        ? tlsConnect({
            host: address,
            port: head.port,
            secureContext: this.dialer.upstreamTls,
            ALPNProtocols: ["h2", "http/1.1"],
            ...(isIPv4(head.host) ? {} : { servername: head.host }),
          })
        : netConnect({ host: address, port: head.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${head.host}:${head.port} timed out`));
      }, this.dialer.connectTimeoutMs);
      socket.once(tls ? "secureConnect" : "connect", () => {
        clearTimeout(timer);
        resolve(socket);
      });
      socket.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }
}
