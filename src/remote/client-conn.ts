/** A client's end of one operation: connect, send the request, hand messages to a callback. */
import type { Duplex } from "node:stream";
import { ErrVMNotRunning } from "../errors.js";
import { OperationStream } from "./operation-stream.js";
import {
  encodeJson,
  endsBothWays,
  errorFromWire,
  Msg,
  parseJson,
  readMessages,
  type Message,
  type OperationRequest,
  type WireError,
} from "./protocol.js";

/**
 * Opens a new byte stream to the sandbox's server (a unix socket, a WebSocket stream). It
 * rejects with ErrVMNotRunning when nothing serves the sandbox any more. With `release`, the
 * connector may hand out a connection that carried an earlier operation (ended cleanly), and
 * takes each such connection back; without it, every operation's connection is closed after.
 */
export type Connector = (() => Promise<Duplex>) & { release?: (conn: Duplex) => void };

/** Where each connection's messages go: the operation it carries now. */
const routes = new WeakMap<Duplex, (msg: Message) => void>();

/** Reads a connection's messages once, for all the operations it will carry. */
function route(conn: Duplex, onMessage: (msg: Message) => void): void {
  if (!routes.has(conn)) {
    conn.on("error", () => undefined);
    readMessages(conn, (msg) => routes.get(conn)?.(msg));
  }
  routes.set(conn, onMessage);
}

/**
 * Connects and sends the request (with `first`'s frames in the same write: the first stdin
 * that was queued while connecting); the operation's messages go to `onMessage`. When the
 * server ends the operation cleanly (OP_END), the connection goes back to the connector.
 */
export async function openOperation(
  connect: Connector,
  req: OperationRequest,
  onMessage: (msg: Message) => void,
  first: () => Buffer[] = () => [],
): Promise<OperationStream> {
  const conn = await connect();
  const op = new OperationStream(conn);
  route(conn, (msg) => {
    // The node asked an idle connection to go while this REQUEST was on its way: it serves it.
    if (msg.type === Msg.Idle) return;
    if (msg.type !== Msg.OpEnd) return onMessage(msg);
    op.finish(!endsBothWays(msg.payload[0] ?? 0));
    // Idle now: any message (the node's IDLE: it will close this one) ends the connection, so
    // the next operation never goes out on a connection the node is closing.
    route(conn, () => conn.destroy());
    if (connect.release) connect.release(conn);
    else conn.destroy();
  });
  op.write(Buffer.concat([encodeJson(Msg.Request, req), ...first()]));
  return op;
}

/** Runs a request whose answer is one RESULT (or ERROR) and returns the RESULT's JSON. */
export async function requestResult<T>(
  connect: Connector,
  id: string,
  req: OperationRequest,
  path?: string,
): Promise<T> {
  let settle: { resolve: (v: T) => void; reject: (e: Error) => void } | undefined;
  const result = new Promise<T>((resolve, reject) => (settle = { resolve, reject }));
  const stream = await openOperation(connect, req, (msg) => {
    try {
      if (msg.type === Msg.Result) settle?.resolve(parseJson<T>(msg.payload));
      else if (msg.type === Msg.Error)
        settle?.reject(errorFromWire(parseJson<WireError>(msg.payload), path));
    } catch (err) {
      settle?.reject(err as Error);
    }
  });
  stream.once("close", () =>
    settle?.reject(new ErrVMNotRunning(`sandbox ${id}: the connection to it was lost`)),
  );
  try {
    return await result;
  } finally {
    stream.destroy();
  }
}
