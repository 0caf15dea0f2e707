/** A guest command reached through a supervisor's control socket, as a channel ExecStream. */
import type { Socket } from "node:net";
import { PassThrough, Writable } from "node:stream";
import type { ExecExit, ExecStream } from "../channel/index.js";
import { ErrVMNotRunning, WheellockError } from "../errors.js";
import { errorFromWire, openOperation } from "./client-conn.js";
import {
  encodeJson,
  encodeMessage,
  Msg,
  parseJson,
  type ControlRequest,
  type Message,
  type WireError,
} from "./wire.js";

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
  socketPath: string,
  id: string,
  req: Extract<ControlRequest, { op: "exec" }>,
): ExecStream {
  const started = pending<number>();
  const exit = pending<ExecExit>();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let socket: Socket | undefined;
  let ended = false;
  const queued: Buffer[] = [];
  const send = (frame: Buffer, done?: () => void): void => {
    if (ended) return done?.();
    if (!socket) {
      queued.push(frame);
      return done?.();
    }
    if (socket.write(frame)) done?.();
    else socket.once("drain", () => done?.());
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
    exit.reject(err);
    stdout.end();
    stderr.end();
  };
  const deliver = (target: PassThrough, data: Buffer): void => {
    // The supervisor pauses the guest when we stop reading: keep only one window here.
    if (!target.write(data) && socket) {
      socket.pause();
      target.once("drain", () => socket?.resume());
    }
  };
  const onMessage = (msg: Message): void => {
    switch (msg.type) {
      case Msg.Started:
        started.resolve(parseJson<{ pid: number }>(msg.payload).pid);
        return;
      case Msg.Stdout:
        return deliver(stdout, msg.payload);
      case Msg.Stderr:
        return deliver(stderr, msg.payload);
      case Msg.Exit: {
        ended = true;
        const value = parseJson<ExecExit>(msg.payload);
        stdout.end();
        stderr.end();
        exit.resolve(value);
        return;
      }
      case Msg.Error:
        return fail(errorFromWire(parseJson<WireError>(msg.payload)));
    }
  };
  openOperation(socketPath, id, req, onMessage).then(
    (s) => {
      socket = s;
      for (const frame of queued.splice(0)) s.write(frame);
      s.once("close", () =>
        fail(new ErrVMNotRunning(`sandbox ${id}: connection to the supervisor lost`)),
      );
    },
    (err: Error) => fail(err),
  );
  return {
    started: started.promise,
    exit: exit.promise,
    stdout,
    stderr,
    stdin,
    signal: (signo) => send(encodeJson(Msg.Signal, { signal: signo })),
    resize: (rows, cols) => send(encodeJson(Msg.Resize, { rows, cols })),
    close: () => {
      fail(new WheellockError("ErrClosed", "exec stream closed by the host"));
      socket?.destroy();
    },
  };
}
