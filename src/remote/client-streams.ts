/** The client side of the streaming operations: a port connection and the event stream. */
import { PassThrough, Writable } from "node:stream";
import { ErrVMNotRunning } from "../errors.js";
import type { PortConnection, SandboxEvent } from "../sandbox/index.js";
import { openOperation, type Connector } from "./client-conn.js";
import type { OperationStream } from "./operation-stream.js";
import {
  deliverOrPause,
  encodeMessage,
  errorFromWire,
  Msg,
  parseJson,
  type WireError,
} from "./protocol.js";

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** A TCP connection to guest `127.0.0.1:port`, relayed by the server. */
export function remotePort(connect: Connector, id: string, port: number): PortConnection {
  const connected = deferred();
  const done = deferred();
  const readable = new PassThrough();
  let conn: OperationStream | undefined;
  let over = false;
  const finish = (err?: Error): void => {
    if (over) return;
    over = true;
    if (err) {
      connected.reject(err);
      done.reject(err);
      readable.destroy(err);
    } else {
      connected.resolve();
      done.resolve();
      readable.end();
    }
  };
  const opened = openOperation(connect, { op: "port-forward", port }, (msg) => {
    switch (msg.type) {
      case Msg.Started:
        return connected.resolve();
      case Msg.Stdout:
        return deliverOrPause(readable, msg.payload, conn);
      case Msg.Eof:
        readable.end();
        return;
      case Msg.Result:
        return finish();
      case Msg.Error:
        return finish(errorFromWire(parseJson<WireError>(msg.payload)));
    }
  });
  opened.then(
    (c) => {
      conn = c;
      c.once("close", () =>
        finish(
          over ? undefined : new ErrVMNotRunning(`sandbox ${id}: the connection to it was lost`),
        ),
      );
    },
    (err: Error) => finish(err),
  );
  const send = async (frame: Buffer): Promise<void> => {
    const c = await opened;
    await connected.promise;
    if (!c.write(frame)) await new Promise((resolve) => c.once("drain", resolve));
  };
  const writable = new Writable({
    write(chunk: Buffer, _enc, cb) {
      send(encodeMessage(Msg.Stdin, chunk)).then(() => cb(), cb);
    },
    final(cb) {
      send(encodeMessage(Msg.Stdin)).then(() => cb(), cb);
    },
  });
  writable.on("error", () => undefined);
  readable.on("error", () => undefined);
  return {
    connected: connected.promise,
    readable,
    writable,
    done: done.promise,
    close: () => {
      finish();
      void opened.then(
        (c) => c.destroy(),
        () => undefined,
      );
    },
  };
}

/**
 * Events as the server sends them, until the sandbox stops or `return()` is called. The
 * subscription starts now, not at the first `next()`, so events of work started right after
 * this call are not missed.
 */
export function remoteEvents(connect: Connector): AsyncIterableIterator<SandboxEvent> {
  const queue: SandboxEvent[] = [];
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const opened = openOperation(connect, { op: "events" }, (msg) => {
    if (msg.type === Msg.Event) {
      const raw = parseJson<SandboxEvent & { timestamp: string }>(msg.payload);
      queue.push({ ...raw, timestamp: new Date(raw.timestamp) } as SandboxEvent);
      // The server waits for us: stop reading while a backlog is queued here.
      if (queue.length >= 256) void opened.then((c) => c.pause());
    } else if (msg.type === Msg.Error) {
      failure = errorFromWire(parseJson<WireError>(msg.payload));
    } else if (msg.type === Msg.Result) {
      ended = true;
    }
    wake?.();
  });
  opened.then(
    (conn) =>
      conn.once("close", () => {
        ended = true;
        wake?.();
      }),
    (err: Error) => {
      failure = err;
      wake?.();
    },
  );
  opened.catch(() => undefined);
  return (async function* (): AsyncGenerator<SandboxEvent> {
    try {
      for (;;) {
        const event = queue.shift();
        if (event) {
          if (queue.length < 64) void opened.then((c) => c.resume());
          yield event;
          continue;
        }
        if (failure) throw failure;
        if (ended) return;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      void opened.then(
        (c) => c.destroy(),
        () => undefined,
      );
    }
  })();
}
