/**
 * Connections that have not asked for anything yet. Anyone who can reach the node can open
 * one without a token: a TCP connection, a TLS handshake left half done, or request headers
 * sent slowly and never finished. Node's own `headersTimeout` is checked only every
 * `connectionsCheckingInterval` and only for connections its parser is tracking; ~1,100 such
 * sockets held the node's whole connection cap for minutes (review rev19 M1), and every call,
 * the operator's included, failed. Here a connection is *waiting* from its accept until its
 * request's headers are complete, and again after each response until the next request
 * (keep-alive) unless that response was to a request with a valid token: a waiting connection is closed after `waitMs`, and only so many may wait at
 * once, from one peer address and in all, so the rest of the connection cap stays for
 * connections that made a request (a WebSocket operation, a REST call in progress).
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";

export interface ConnectionGuardOptions {
  /** How long a connection may wait (accept or previous response → complete headers). */
  waitMs: number;
  /** Connections waiting at once, over all peers. */
  maxWaiting: number;
  /** Connections waiting at once from one peer address. */
  maxWaitingPerPeer: number;
}

/** The default wait: request headers (and a TLS handshake) come in one round trip or two. */
export const CONNECTION_WAIT_MS = 10_000;

interface Tracked {
  readonly peer: string;
  readonly socket: Socket;
  /** Set while the connection waits. */
  timer: NodeJS.Timeout | undefined;
  /** Requests whose responses are not done (pipelined ones included). */
  inFlight: number;
  /** It made a request with a valid token: it never waits again (keep-alive idles as usual). */
  trusted: boolean;
}

/** Requests whose token the routes accepted. */
const withToken = new WeakSet<IncomingMessage>();

/** The routes accepted `req`'s token: its connection is no longer a stranger's. */
export function tokenAccepted(req: IncomingMessage): void {
  withToken.add(req);
}

/** Connections are matched by their peer's address and port (a TLS socket's are its TCP socket's). */
const keyOf = (socket: Socket): string => `${socket.remoteAddress}|${socket.remotePort}`;

/**
 * When `maxWaiting` connections wait, a new one takes the place of the oldest waiting
 * connection of the peer that holds the most (if that is more than the newcomer's peer
 * holds): a flood from a few addresses cannot keep others out, and a client that sends its
 * request at once (in a round trip) is through before a flood from many addresses evicts it.
 */
export function guardConnections(server: Server, opts: ConnectionGuardOptions): void {
  const tracked = new Map<string, Tracked>();
  /** Waiting connections by peer, oldest first. */
  const waitingByPeer = new Map<string, Set<Tracked>>();
  let waiting = 0;

  const stopWaiting = (t: Tracked): void => {
    if (t.timer === undefined) return;
    clearTimeout(t.timer);
    t.timer = undefined;
    waiting -= 1;
    const set = waitingByPeer.get(t.peer);
    set?.delete(t);
    if (set?.size === 0) waitingByPeer.delete(t.peer);
  };
  const drop = (t: Tracked): void => {
    stopWaiting(t);
    t.socket.destroy();
  };
  const startWaiting = (t: Tracked): void => {
    if (t.timer !== undefined || t.inFlight > 0 || t.trusted || t.socket.destroyed) return;
    waiting += 1;
    const set = waitingByPeer.get(t.peer) ?? new Set<Tracked>();
    set.add(t);
    waitingByPeer.set(t.peer, set);
    t.timer = setTimeout(() => drop(t), opts.waitMs);
    t.timer.unref();
  };
  /** Room for one more waiting connection of `peer`, made if need be; false: refuse it. */
  const room = (peer: string): boolean => {
    const own = waitingByPeer.get(peer)?.size ?? 0;
    if (own >= opts.maxWaitingPerPeer) return false;
    if (waiting < opts.maxWaiting) return true;
    let most: Set<Tracked> | undefined;
    for (const set of waitingByPeer.values()) if (set.size > (most?.size ?? 0)) most = set;
    const oldest = most?.values().next().value;
    if (most === undefined || oldest === undefined || most.size <= own) return false;
    drop(oldest);
    return true;
  };

  server.on("connection", (socket: Socket) => {
    const peer = socket.remoteAddress;
    if (peer === undefined || !room(peer)) {
      socket.destroy();
      return;
    }
    const key = keyOf(socket);
    const t: Tracked = { peer, socket, timer: undefined, inFlight: 0, trusted: false };
    tracked.set(key, t);
    startWaiting(t);
    socket.once("close", () => {
      stopWaiting(t);
      if (tracked.get(key) === t) tracked.delete(key);
    });
  });
  // A request's headers are complete: the routes answer (or refuse) it now; after its
  // response, the connection waits again for the next request (keep-alive).
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const t = tracked.get(keyOf(req.socket));
    if (t === undefined) return;
    stopWaiting(t);
    t.inFlight += 1;
    res.once("close", () => {
      t.inFlight -= 1;
      if (withToken.has(req)) t.trusted = true;
      startWaiting(t);
    });
  });
  // A WebSocket: the data plane's limits hold from here (its token, its request wait).
  server.on("upgrade", (req: IncomingMessage) => {
    const t = tracked.get(keyOf(req.socket));
    if (t === undefined) return;
    stopWaiting(t);
    t.inFlight += 1;
  });
}
