/**
 * The WebSocket transport of the operation protocol (`wheellock serve`): one WebSocket per
 * operation, each a Duplex of protocol messages, exactly as a supervisor's unix socket is.
 * `ws` is loaded on first use, so local-only programs never pay for it. Each WebSocket is
 * authenticated on its own (its handshake carries the token); a connector keeps one opened
 * ahead (a spare) so an operation does not wait for TCP, the upgrade and the token check.
 */
import type { IncomingMessage } from "node:http";
import { connect as netConnect, isIP, type NetConnectOpts, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { ConnectionOptions as TlsConnectionOptions, TLSSocket } from "node:tls";
import type { WebSocket as WsSocket } from "ws";
import { reviveError, type WheellockError } from "../errors.js";
import { MAX_MESSAGE_BYTES } from "./protocol.js";
import { nodeConnectError } from "./node-connect-error.js";
import {
  sparePool,
  type OpenedWebSocket,
  type PooledConnector,
  type SparePoolOptions,
} from "./websocket-pool.js";

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

/** The header a spare's handshake carries: the node may refuse spares it has no room for. */
export const SPARE_HEADER = "x-wheellock-spare";

/**
 * A TCP (or TLS) connection that keeps the process alive only while `ref`'d: a spare waiting
 * for the next operation must not hold a finished program open.
 */
function connectionMaker(
  tlsConnect: ((options: TlsConnectionOptions) => TLSSocket) | undefined,
  held: { socket?: Socket },
  unref: boolean,
) {
  return (options: TlsConnectionOptions & { socketPath?: string }): Socket => {
    // As `ws` itself connects: its options' `path` is the URL's path, not a unix socket.
    const socket = tlsConnect
      ? tlsConnect({
          ...options,
          path: undefined,
          servername: options.servername ?? (isIP(options.host ?? "") ? "" : options.host),
        } as TlsConnectionOptions)
      : netConnect({ ...options, path: options.socketPath } as NetConnectOpts);
    if (unref) socket.unref();
    held.socket = socket;
    return socket;
  };
}

/**
 * Opens one WebSocket to `target` (the handshake carries the token, checked by the node
 * before it upgrades). `spare`: opened ahead of an operation, not keeping the process alive.
 */
export async function openWebSocket(
  target: WebSocketTarget,
  id: string,
  spare = false,
): Promise<OpenedWebSocket> {
  const { WebSocket } = await import("ws");
  // TLS code is loaded only for a wss:// node (a plain run never loads it).
  const tlsConnect = target.url.startsWith("wss:") ? (await import("node:tls")).connect : undefined;
  const held: { socket?: Socket } = {};
  return new Promise<OpenedWebSocket>((resolve, reject) => {
    const ws = new WebSocket(target.url, {
      headers: {
        ...target.headers,
        authorization: `Bearer ${target.token}`,
        ...(spare ? { [SPARE_HEADER]: "1" } : {}),
      },
      maxPayload: MAX_FRAME_BYTES,
      perMessageDeflate: false,
      // A node that accepts the connection and never answers must not hang the caller.
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      createConnection: connectionMaker(tlsConnect, held, spare) as unknown as typeof netConnect,
      ...(target.ca !== undefined ? { ca: target.ca } : {}),
    });
    ws.once("unexpected-response", (_req, res) => {
      // The refusal's body says why; the socket's own error after that says nothing more.
      ws.removeAllListeners("error");
      ws.on("error", () => undefined);
      void refusal(res, target.url).then(reject);
    });
    ws.once("error", (err: NodeJS.ErrnoException) =>
      reject(nodeConnectError(err, `sandbox ${id}: its node`)),
    );
    ws.once("open", () => {
      ws.removeAllListeners("error");
      resolve({ ws, socket: held.socket });
    });
  });
}

/** The opened WebSocket as the Duplex an operation runs over. */
export async function operationStream(opened: OpenedWebSocket): Promise<Duplex> {
  const { createWebSocketStream } = await import("ws");
  opened.socket?.ref();
  return webSocketDuplex(opened.ws, (socket) => createWebSocketStream(socket));
}

/**
 * Opens a WebSocket per operation to `target`. With `pool` (the default), an authenticated
 * spare is kept ready for the next operation (see websocket-pool.ts); `false` opens each one
 * when asked.
 */
export function webSocketConnector(
  target: WebSocketTarget,
  id: string,
  pool: SparePoolOptions | false = {},
): PooledConnector {
  if (pool === false) {
    const connect = async () => operationStream(await openWebSocket(target, id));
    return Object.assign(connect, { close: () => undefined });
  }
  return sparePool((spare) => openWebSocket(target, id, spare), operationStream, pool);
}
