/**
 * The WebSockets of one sandbox's connector, kept open between operations, so an operation's
 * round trip includes neither a TCP connection, an HTTP upgrade and a token check, nor the
 * node's connection to the supervisor. A WebSocket carries one operation at a time; one whose
 * operation ended cleanly (the server's OP_END) comes back here (`release`, at most
 * `maxIdle` of them) for the next. One that ended otherwise is closed, never reused, and a
 * spare is opened in the background in its place (one that comes while it opens waits for
 * it). Each WebSocket is authenticated on its own, with the connector's own token: nothing is
 * shared between sandboxes. One unused for `idleMs` is closed (the node closes one that waits
 * too long as well: it sends IDLE first, and a kept connection or spare that gets it is
 * closed here, never used again); one the node drops, or refuses (it keeps room for
 * operations), is simply not there next time, and that operation opens its own connection.
 */
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { WebSocket as WsSocket } from "ws";
import type { Connector } from "./client-conn.js";

/** An open, authenticated WebSocket to one sandbox, and the connection under it. */
export interface OpenedWebSocket {
  ws: WsSocket;
  socket: Socket | undefined;
}

export interface SparePoolOptions {
  /** How long a spare waits for an operation before it is closed. Default 10 s. */
  idleMs?: number;
  /** After a spare could not be opened, none is tried for this long. Default 1 s. */
  retryAfterMs?: number;
  /** Connections kept for the next operations. Default 2. */
  maxIdle?: number;
}

/** A connector that holds connections of its own: `close` lets them go. */
export type PooledConnector = Connector & { close(): void };

/** A connection that carried an operation and waits for the next. */
interface Idle {
  stream: Duplex;
  socket: Socket | undefined;
  timer: NodeJS.Timeout;
}

const DEFAULT_IDLE_MS = 10_000;
const DEFAULT_RETRY_AFTER_MS = 1_000;
const DEFAULT_MAX_IDLE = 2;
const OPEN = 1;

interface Spare {
  opened: OpenedWebSocket;
  timer: NodeJS.Timeout;
  onClose: () => void;
}

export function sparePool(
  open: (spare: boolean) => Promise<OpenedWebSocket>,
  toStream: (opened: OpenedWebSocket) => Promise<Duplex>,
  options: SparePoolOptions = {},
): PooledConnector {
  const idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
  const retryAfterMs = options.retryAfterMs ?? DEFAULT_RETRY_AFTER_MS;
  const maxIdle = options.maxIdle ?? DEFAULT_MAX_IDLE;
  let spare: Spare | undefined;
  /** A spare being opened; an operation that finds no spare waits for this one instead. */
  let opening: { ws: Promise<OpenedWebSocket | undefined>; claimed: boolean } | undefined;
  let closed = false;
  let quietUntil = 0;

  const drop = (s: Spare): void => {
    clearTimeout(s.timer);
    s.opened.ws.off("close", s.onClose);
    s.opened.ws.off("message", s.onClose);
    if (spare === s) spare = undefined;
  };

  const park = (opened: OpenedWebSocket): void => {
    if (closed || spare) return void opened.ws.close();
    const s: Spare = {
      opened,
      timer: setTimeout(() => {
        drop(s);
        opened.ws.close();
      }, idleMs),
      // Dropped by the node (restarted, idle, full), or asked to go (IDLE: nothing else comes
      // on a spare): the next operation opens its own; this one is never sent an operation.
      onClose: () => {
        drop(s);
        opened.ws.close();
      },
    };
    s.timer.unref();
    opened.ws.once("close", s.onClose);
    opened.ws.once("message", s.onClose);
    spare = s;
  };

  const refill = (): void => {
    if (closed || spare || opening || Date.now() < quietUntil) return;
    const attempt = {
      ws: open(true).then(
        (opened): OpenedWebSocket | undefined => opened,
        () => {
          // Refused or unreachable: operations open their own; try again a little later.
          quietUntil = Date.now() + retryAfterMs;
          return undefined;
        },
      ),
      claimed: false,
    };
    opening = attempt;
    void attempt.ws.then((opened) => {
      if (opening === attempt) opening = undefined;
      if (opened && !attempt.claimed) park(opened);
    });
  };

  const usable = (opened: OpenedWebSocket | undefined): OpenedWebSocket | undefined => {
    if (!opened || opened.ws.readyState === OPEN) return opened;
    opened.ws.terminate();
    return undefined;
  };

  const take = async (): Promise<OpenedWebSocket | undefined> => {
    const s = spare;
    if (s) {
      drop(s);
      return usable(s.opened);
    }
    const pending = opening;
    if (!pending) return undefined;
    // Half opened already: finishing it is quicker than starting another.
    pending.claimed = true;
    opening = undefined;
    // A spare's connection does not hold the process open; an operation waiting for it must.
    const hold = setInterval(() => undefined, 60_000);
    try {
      return usable(await pending.ws);
    } finally {
      clearInterval(hold);
    }
  };

  const idle: Idle[] = [];
  /** The connection under each stream handed out (ref'd while it carries an operation). */
  const sockets = new WeakMap<Duplex, Socket | undefined>();

  const connect = async (): Promise<Duplex> => {
    for (let reused = idle.pop(); reused; reused = idle.pop()) {
      clearTimeout(reused.timer);
      if (reused.stream.destroyed) continue;
      reused.socket?.ref();
      return reused.stream;
    }
    const opened = (await take()) ?? (await open(false));
    const stream = await toStream(opened);
    sockets.set(stream, opened.socket);
    // A connection that closes is replaced by a spare once its operation is over: opened
    // during it, its TCP connection, upgrade and token check (here, on the node and at the
    // supervisor) would take CPU from the operation itself (bench/remote-wire.ts).
    stream.once("close", () => {
      const at = idle.findIndex((entry) => entry.stream === stream);
      if (at < 0) return refill();
      // An idle one the node or its timer closed: the next operation opens one if it must.
      clearTimeout(idle[at]?.timer);
      idle.splice(at, 1);
    });
    return stream;
  };

  const release = (stream: Duplex): void => {
    if (closed || stream.destroyed || idle.length >= maxIdle) return void stream.destroy();
    const socket = sockets.get(stream);
    // Waiting here must not hold a finished program open.
    socket?.unref();
    const timer = setTimeout(() => stream.destroy(), idleMs);
    timer.unref();
    idle.push({ stream, socket, timer });
  };

  return Object.assign(connect, {
    release,
    close: () => {
      closed = true;
      for (const entry of idle.splice(0)) {
        clearTimeout(entry.timer);
        entry.stream.destroy();
      }
      const s = spare;
      if (s) {
        drop(s);
        s.opened.ws.close();
      }
    },
  });
}
