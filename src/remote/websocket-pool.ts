/**
 * One spare WebSocket kept open ahead of the next operation, so an operation's round trip
 * does not include a TCP connection, an HTTP upgrade and a token check. Each WebSocket still
 * carries one operation and is authenticated on its own, with the connector's own token:
 * nothing is shared between sandboxes. When an operation that took the spare ends, a
 * replacement is opened in the background (one that comes while it opens waits for it). A spare unused for `idleMs` is closed (the node closes one that waits too
 * long as well); one the node drops, or refuses (it keeps room for operations), is simply not
 * there next time, and that operation opens its own connection.
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
}

/** A connector that holds connections of its own: `close` lets them go. */
export type PooledConnector = Connector & { close(): void };

const DEFAULT_IDLE_MS = 10_000;
const DEFAULT_RETRY_AFTER_MS = 1_000;
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
  let spare: Spare | undefined;
  /** A spare being opened; an operation that finds no spare waits for this one instead. */
  let opening: { ws: Promise<OpenedWebSocket | undefined>; claimed: boolean } | undefined;
  let closed = false;
  let quietUntil = 0;

  const drop = (s: Spare): void => {
    clearTimeout(s.timer);
    s.opened.ws.off("close", s.onClose);
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
      // Dropped by the node (restarted, idle, full): the next operation opens its own.
      onClose: () => drop(s),
    };
    s.timer.unref();
    opened.ws.once("close", s.onClose);
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

  const connect = async (): Promise<Duplex> => {
    const opened = (await take()) ?? (await open(false));
    const stream = await toStream(opened);
    // The next spare is opened once this operation is over: opened during it, its TCP
    // connection, upgrade and token check (here, on the node and at the supervisor) take CPU
    // from the operation itself (measured: bench/remote-wire.ts, docs/PERFORMANCE.md).
    stream.once("close", refill);
    return stream;
  };
  return Object.assign(connect, {
    close: () => {
      closed = true;
      const s = spare;
      if (s) {
        drop(s);
        s.opened.ws.close();
      }
    },
  });
}
