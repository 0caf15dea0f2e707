/** Serves the streaming operations: a file read, a port connection, the event stream. */
import type { OperationStream } from "./operation-stream.js";
import type { SandboxApi, SandboxEvent } from "../sandbox/index.js";
import { drained, encodeJson, encodeMessage, Msg, wireError, type Message } from "./protocol.js";

export function serveReadFile(api: SandboxApi, stream: OperationStream, path: string): void {
  let source;
  try {
    source = api.readFileStream(path);
  } catch (err) {
    stream.end(encodeJson(Msg.Error, wireError(err)));
    return;
  }
  const file = source;
  stream.once("close", () => file.destroy());
  file.on("data", (chunk: Buffer) => {
    if (!stream.write(encodeMessage(Msg.Stdout, chunk))) {
      file.pause();
      stream.once("drain", () => file.resume());
    }
  });
  file.once("end", () => stream.end(encodeJson(Msg.Result, {})));
  file.once("error", (err) => stream.end(encodeJson(Msg.Error, wireError(err))));
}

/** A port connection: raw bytes both ways, EOF each way, RESULT when both are over. */
export function servePort(
  api: SandboxApi,
  stream: OperationStream,
  port: number,
): (msg: Message) => void {
  const conn = api.openPort(port);
  conn.connected.then(
    () => stream.write(encodeJson(Msg.Started, {})),
    () => undefined,
  );
  conn.readable.on("data", (chunk: Buffer) => {
    if (!stream.write(encodeMessage(Msg.Stdout, chunk))) {
      conn.readable.pause();
      stream.once("drain", () => conn.readable.resume());
    }
  });
  conn.readable.once("end", () => stream.write(encodeMessage(Msg.Eof)));
  conn.done.then(
    () => stream.end(encodeJson(Msg.Result, {})),
    (err: unknown) => stream.end(encodeJson(Msg.Error, wireError(err))),
  );
  stream.once("close", () => conn.close());
  return (msg) => {
    if (msg.type !== Msg.Stdin) return;
    if (msg.payload.length === 0) conn.writable.end();
    else if (!conn.writable.write(msg.payload)) {
      stream.pause();
      conn.writable.once("drain", () => stream.resume());
    }
  };
}

/**
 * Every event from now on, one EVENT message each, until the sandbox stops (then RESULT) or
 * the client goes away. A client that reads slowly holds the iterator back, whose backlog is
 * bounded by the event hub (oldest dropped).
 */
export function serveEvents(api: SandboxApi, stream: OperationStream): void {
  const events = api.events();
  stream.once("close", () => void events.return?.());
  void (async () => {
    try {
      for await (const event of events) {
        if (stream.destroyed) return;
        if (!stream.write(encodeJson(Msg.Event, eventToJson(event)))) await drained(stream);
      }
      stream.end(encodeJson(Msg.Result, {}));
    } catch (err) {
      stream.end(encodeJson(Msg.Error, wireError(err)));
    }
  })();
}

/** Dates as ISO strings; everything else in an event is plain data already. */
function eventToJson(event: SandboxEvent): unknown {
  return { ...event, timestamp: event.timestamp.toISOString() };
}
