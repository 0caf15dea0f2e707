/** A client's end of one control-socket operation. */
import { connect, type Socket } from "node:net";
import {
  ErrExec,
  ErrFile,
  ErrVMNotRunning,
  WheellockError,
  type WheellockErrorCode,
} from "../errors.js";
import {
  encodeJson,
  Msg,
  parseJson,
  readMessages,
  type ControlRequest,
  type Message,
  type WireError,
} from "./wire.js";

export function errorFromWire(wire: WireError, path?: string): WheellockError {
  switch (wire.code) {
    case "ErrFile": {
      const prefix = path !== undefined ? `${path}: ` : "";
      const message = wire.message.startsWith(prefix)
        ? wire.message.slice(prefix.length)
        : wire.message;
      return new ErrFile(path ?? "", message, wire.errno);
    }
    case "ErrVMNotRunning":
      return new ErrVMNotRunning(wire.message);
    case "ErrExec":
      return new ErrExec(wire.message);
    case "ErrInvalidConfig":
      return new WheellockError("ErrInvalidConfig", wire.message);
    default:
      return new WheellockError(wire.code as WheellockErrorCode, wire.message);
  }
}

/** Connects and sends the request; the socket's messages go to `onMessage`. */
export function openOperation(
  socketPath: string,
  id: string,
  req: ControlRequest,
  onMessage: (msg: Message) => void,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        err.code === "ENOENT" || err.code === "ECONNREFUSED"
          ? new ErrVMNotRunning(`sandbox ${id} is not running (its control socket is gone)`)
          : err,
      );
    };
    socket.once("error", onError);
    socket.once("connect", () => {
      socket.off("error", onError);
      socket.on("error", () => undefined);
      readMessages(socket, onMessage);
      socket.write(encodeJson(Msg.Request, req));
      resolve(socket);
    });
  });
}

/** Runs a request whose answer is one RESULT (or ERROR) and returns the RESULT's JSON. */
export async function requestResult<T>(
  socketPath: string,
  id: string,
  req: ControlRequest,
  path?: string,
): Promise<T> {
  let settle: { resolve: (v: T) => void; reject: (e: Error) => void } | undefined;
  const result = new Promise<T>((resolve, reject) => (settle = { resolve, reject }));
  const socket = await openOperation(socketPath, id, req, (msg) => {
    if (msg.type === Msg.Result) settle?.resolve(parseJson<T>(msg.payload));
    else if (msg.type === Msg.Error)
      settle?.reject(errorFromWire(parseJson<WireError>(msg.payload), path));
  });
  socket.once("close", () =>
    settle?.reject(new ErrVMNotRunning(`sandbox ${id}: the supervisor closed the connection`)),
  );
  try {
    return await result;
  } finally {
    socket.destroy();
  }
}
