/** A client's end of one operation: connect, send the request, hand messages to a callback. */
import type { Duplex } from "node:stream";
import { ErrVMNotRunning } from "../errors.js";
import {
  encodeJson,
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
 * rejects with ErrVMNotRunning when nothing serves the sandbox any more.
 */
export type Connector = () => Promise<Duplex>;

/** Connects and sends the request; the stream's messages go to `onMessage`. */
export async function openOperation(
  connect: Connector,
  req: OperationRequest,
  onMessage: (msg: Message) => void,
): Promise<Duplex> {
  const stream = await connect();
  stream.on("error", () => undefined);
  readMessages(stream, onMessage);
  stream.write(encodeJson(Msg.Request, req));
  return stream;
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
