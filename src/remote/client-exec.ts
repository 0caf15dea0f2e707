/** A guest command reached over an operation connection, as the ExecStream an ExecProcess wraps. */
import { PassThrough, Writable } from "node:stream";
import type { ExecExit, ExecStream } from "../channel/index.js";
import { ErrClosed, ErrVMNotRunning } from "../errors.js";
import { openOperation, type Connector } from "./client-conn.js";
import type { OperationStream } from "./operation-stream.js";
import {
  deliverOrPause,
  encodeJson,
  encodeMessage,
  errorFromWire,
  Msg,
  parseJson,
  type Message,
  type OperationRequest,
  type WireError,
} from "./protocol.js";

interface Pending<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: Error) => void;
}

function pending<T>(): Pending<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

export function remoteExec(
  connect: Connector,
  id: string,
  req: Extract<OperationRequest, { op: "exec" }>,
): ExecStream {
  const started = pending<number>();
  const execId = pending<number>();
  const exit = pending<ExecExit>();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let conn: OperationStream | undefined;
  let ended = false;
  const queued: Buffer[] = [];
  const send = (frame: Buffer, done?: () => void): void => {
    if (ended) return done?.();
    if (!conn) {
      queued.push(frame);
      return done?.();
    }
    if (conn.write(frame)) done?.();
    else conn.once("drain", () => done?.());
  };
  const stdin = new Writable({
    write(chunk: Buffer, _enc, done) {
      send(encodeMessage(Msg.Stdin, chunk), () => done());
    },
    final(done) {
      send(encodeMessage(Msg.Stdin), () => done());
    },
  });
  const fail = (err: Error): void => {
    if (ended) return;
    ended = true;
    started.reject(err);
    execId.reject(err);
    exit.reject(err);
    stdout.end();
    stderr.end();
  };
  // The server pauses the guest when we stop reading: keep only one window here.
  const deliver = (target: PassThrough, data: Buffer): void => deliverOrPause(target, data, conn);
  const onMessage = (msg: Message): void => {
    switch (msg.type) {
      case Msg.Started: {
        const info = parseJson<{ pid: number; execId?: number }>(msg.payload);
        started.resolve(info.pid);
        // A server that predates exec ids sends none: 0 names no exec.
        execId.resolve(typeof info.execId === "number" ? info.execId : 0);
        return;
      }
      case Msg.Stdout:
        return deliver(stdout, msg.payload);
      case Msg.Stderr:
        return deliver(stderr, msg.payload);
      case Msg.Exit: {
        ended = true;
        const value = parseJson<ExecExit & { pid?: number; execId?: number }>(msg.payload);
        // Asked for with the exit (`pidWithExit`): no STARTED came before it.
        if (typeof value.pid === "number") started.resolve(value.pid);
        if (typeof value.execId === "number") execId.resolve(value.execId);
        stdout.end();
        stderr.end();
        exit.resolve(value);
        return;
      }
      case Msg.Error:
        return fail(errorFromWire(parseJson<WireError>(msg.payload)));
    }
  };
  // Stdin written while connecting goes out with the REQUEST, in one message.
  openOperation(connect, req, onMessage, () => queued.splice(0)).then(
    (c) => {
      conn = c;
      for (const frame of queued.splice(0)) c.write(frame);
      c.once("close", () =>
        fail(new ErrVMNotRunning(`sandbox ${id}: the connection to it was lost`)),
      );
    },
    (err: Error) => fail(err),
  );
  return {
    started: started.promise,
    execId: execId.promise,
    exit: exit.promise,
    stdout,
    stderr,
    stdin,
    signal: (signo) => send(encodeJson(Msg.Signal, { signal: signo })),
    resize: (rows, cols) => send(encodeJson(Msg.Resize, { rows, cols })),
    close: () => {
      fail(new ErrClosed("exec stream closed by the host"));
      conn?.destroy();
    },
  };
}
