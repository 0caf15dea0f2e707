/**
 * The WebSocket transport of the operation protocol (`wheellock serve`): one WebSocket per
 * operation, each a Duplex of protocol messages, exactly as a supervisor's unix socket is.
 * `ws` is loaded on first use, so local-only programs never pay for it.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { WebSocket as WsSocket } from "ws";
import { ErrAuth, ErrVMNotRunning, reviveError, type WheellockError } from "../errors.js";
import type { Connector } from "./client-conn.js";
import { MAX_MESSAGE_BYTES } from "./protocol.js";

/** A protocol message and its WebSocket frame header fit in one frame of this size. */
export const MAX_FRAME_BYTES = MAX_MESSAGE_BYTES + 64;

/** Where one sandbox's operations go. */
export interface WebSocketTarget {
  /** `ws://` or `wss://` URL of the sandbox's operation endpoint. */
  url: string;
  /** Sent as `Authorization: Bearer`: the sandbox's token or the node's operator token. */
  token: string;
  /** PEM certificates trusted for `wss://`, besides the system's (a private CA). */
  ca?: string;
  /** More request headers: what a router in front of the node routes by (`X-Sandbox-ID`). */
  headers?: Readonly<Record<string, string>>;
}

/**
 * The WebSocket as a Duplex. It closes (and emits `close`) once all it received has been read
 * or it failed, so a peer that disappears is seen the same way a closed unix socket is.
 */
export function webSocketDuplex(ws: WsSocket, createStream: (ws: WsSocket) => Duplex): Duplex {
  const stream = createStream(ws);
  stream.on("error", () => undefined);
  stream.once("end", () => stream.destroy());
  return stream;
}

/** The typed error a refused handshake's one-line JSON body names. */
async function refusal(res: IncomingMessage, url: string): Promise<WheellockError> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of res) {
      chunks.push(chunk as Buffer);
      if (chunks.length > 16) break;
    }
  } catch {
    // the body is a courtesy
  }
  let code = res.statusCode === 401 || res.statusCode === 403 ? "ErrAuth" : "ErrVMNotRunning";
  let message = `${url}: HTTP ${res.statusCode ?? "?"}`;
  try {
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
      error?: { code?: string; message?: string };
    };
    if (typeof body.error?.code === "string") code = body.error.code;
    if (typeof body.error?.message === "string") message = body.error.message;
  } catch {
    // not JSON: keep the status line
  }
  return reviveError(code, message);
}

const HANDSHAKE_TIMEOUT_MS = 30_000;

/** Opens one WebSocket per operation to `target`. */
export function webSocketConnector(target: WebSocketTarget, id: string): Connector {
  return async () => {
    const { WebSocket, createWebSocketStream } = await import("ws");
    return new Promise<Duplex>((resolve, reject) => {
      const ws = new WebSocket(target.url, {
        headers: { ...target.headers, authorization: `Bearer ${target.token}` },
        maxPayload: MAX_FRAME_BYTES,
        perMessageDeflate: false,
        // A node that accepts the connection and never answers must not hang the caller.
        handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
        ...(target.ca !== undefined ? { ca: target.ca } : {}),
      });
      ws.once("unexpected-response", (_req, res) => {
        // The refusal's body says why; the socket's own error after that says nothing more.
        ws.removeAllListeners("error");
        ws.on("error", () => undefined);
        void refusal(res, target.url).then(reject);
      });
      ws.once("error", (err: NodeJS.ErrnoException) => {
        const unreachable = ["ECONNREFUSED", "ECONNRESET", "EHOSTUNREACH", "ENOTFOUND"];
        reject(
          unreachable.includes(err.code ?? "")
            ? new ErrVMNotRunning(`sandbox ${id}: its node is not reachable (${err.code})`)
            : err.message.includes("certificate") || err.message.includes("self-signed")
              ? new ErrAuth(
                  `sandbox ${id}: the node's TLS certificate is not trusted: ${err.message}`,
                )
              : new ErrVMNotRunning(`sandbox ${id}: cannot reach its node: ${err.message}`),
        );
      });
      ws.once("open", () => {
        ws.removeAllListeners("error");
        resolve(webSocketDuplex(ws, (socket) => createWebSocketStream(socket)));
      });
    });
  };
}
