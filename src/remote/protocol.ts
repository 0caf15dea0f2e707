/**
 * The sandbox operation protocol: how a `SandboxApi` is carried over a byte stream (a
 * supervisor's unix socket today, a WebSocket stream for `serve`). One operation at a time
 * per connection: the client sends REQUEST (JSON), then data messages flow both ways, and the
 * server ends with EXIT, RESULT or ERROR followed by OP_END. The client may then send the next
 * REQUEST on the same connection; what it still sends for the finished operation (stdin, a
 * signal that crossed the EXIT) is dropped. Servers that predate this send an OP_END without
 * the ENDS_BOTH_WAYS flag and wait for the client's own OP_END before the next REQUEST; a
 * client answers such an OP_END with one. A client may also just close the connection after
 * the operation. Messages are `[type u8][length u32 BE][payload]`. Lengths are bounded on
 * both sides, so a confused or hostile peer cannot exhaust memory.
 */
import type { Duplex, Writable } from "node:stream";
import type { ConfigureOptions } from "../config/index.js";
import { ErrFile, reviveError, WheellockError } from "../errors.js";
import type { ApprovalDecision } from "../observe/index.js";

export const Msg = {
  /** C→S JSON `OperationRequest`. */
  Request: 1,
  /** S→C raw bytes (exec stdout, file contents, port-forward data). */
  Stdout: 2,
  /** S→C raw bytes. */
  Stderr: 3,
  /** C→S raw bytes; an empty payload is EOF. */
  Stdin: 4,
  /**
   * S→C JSON `{ exitCode, signal }` as the guest reported it (with `pid` and `execId` when the
   * REQUEST asked for `pidWithExit`). Terminal.
   */
  Exit: 5,
  /** C→S JSON `{ rows, cols }`. */
  Resize: 6,
  /** C→S JSON `{ signal }` (a number). */
  Signal: 7,
  /** S→C JSON (operation specific). Terminal. */
  Result: 8,
  /** S→C JSON `{ code, message, errno? }`. Terminal. */
  Error: 9,
  /** S→C JSON `{ pid }`: the exec started; `{}`: a port connection is up. */
  Started: 10,
  /** S→C empty: a port-forward's guest side closed its write direction. */
  Eof: 11,
  /** S→C JSON: one sandbox event (timestamps as ISO strings). */
  Event: 12,
  /**
   * S→C after the terminal message: the connection stays open for another operation. Its
   * payload is one flags byte (`OP_END_FLAGS`); an empty one is an older server's, which
   * waits for the client's OP_END (C→S, empty: it sends nothing more for this operation).
   */
  OpEnd: 13,
  /**
   * S→C empty, only between operations (a `serve` node): this connection will be closed, send
   * no new REQUEST on it. One already on its way when this was sent is still served: the node
   * closes only a connection its client closes or leaves silent for a long grace period, so an
   * operation never meets a connection closed under it.
   */
  Idle: 14,
} as const;
export type Msg = (typeof Msg)[keyof typeof Msg];

/** Flags of the server's OP_END. */
export const OP_END_FLAGS = {
  /**
   * The operation is over for both sides: the client sends no OP_END, and the next message
   * the server takes as an operation's is the next REQUEST (one message fewer per operation
   * through every process on the way).
   */
  EndsBothWays: 1,
} as const;

/**
 * True for an OP_END (its flags byte; 0 for an older server's empty one) after which the
 * client sends nothing (no OP_END of its own).
 */
export function endsBothWays(flags: number): boolean {
  return (flags & OP_END_FLAGS.EndsBothWays) !== 0;
}

/**
 * Messages a client sends within an operation. After the server's OP_END one of them is a
 * late message for the finished operation (e.g. a signal that crossed the EXIT) and is dropped.
 */
export function isClientOperationMessage(type: number): boolean {
  return type === Msg.Stdin || type === Msg.Resize || type === Msg.Signal || type === Msg.OpEnd;
}

export const MAX_MESSAGE_BYTES = 1024 * 1024;
/** A message's header: type u8, payload length u32 BE. */
export const HEADER_BYTES = 5;

export type OperationRequest =
  | {
      op: "exec";
      argv: string[];
      cwd?: string;
      user?: string;
      env?: Record<string, string>;
      tty?: { rows: number; cols: number };
      /**
       * The client needs the pid and exec id only with the exit (`exec()`, not `spawn()`):
       * the server sends no STARTED, and EXIT carries `pid` and `execId`. A server that
       * predates it sends STARTED as before.
       */
      pidWithExit?: boolean;
    }
  | { op: "read-file"; path: string }
  | { op: "write-file"; path: string; mode?: number; uid?: number; gid?: number }
  | { op: "list-files"; path: string }
  | { op: "stat"; path: string; followSymlinks?: boolean }
  | { op: "mkdir"; path: string; mode?: number }
  | { op: "remove"; path: string; recursive?: boolean }
  | { op: "port-forward"; port: number }
  | { op: "allow-list"; action: "add" | "delete"; hosts: string[] }
  | { op: "allowed-hosts" }
  | { op: "pending-requests" }
  | { op: "decide-request"; requestId: number; decision: ApprovalDecision }
  | { op: "usage" }
  | { op: "configure"; options: ConfigureOptions }
  | { op: "events" }
  | { op: "checkpoint"; name?: string }
  | { op: "stop" };

export type OperationName = OperationRequest["op"];

export interface WireError {
  code: string;
  message: string;
  errno?: string;
}

export function encodeMessage(type: Msg, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}

/** The server's OP_END: the operation is over for both sides. */
export const SERVER_OP_END = encodeMessage(Msg.OpEnd, Buffer.from([OP_END_FLAGS.EndsBothWays]));

export function encodeJson(type: Msg, value: unknown): Buffer {
  return encodeMessage(type, JSON.stringify(value));
}

export interface Message {
  type: number;
  payload: Buffer;
}

/** Splits a byte stream into messages; throws on an oversized one. */
export class MessageReader {
  private buffered: Buffer = Buffer.alloc(0);

  constructor(private readonly onMessage: (msg: Message) => void) {}

  push(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= HEADER_BYTES) {
      const length = this.buffered.readUInt32BE(1);
      if (length > MAX_MESSAGE_BYTES) throw new Error(`control message of ${length} bytes`);
      if (this.buffered.length < HEADER_BYTES + length) return;
      const type = this.buffered.readUInt8(0);
      const payload = this.buffered.subarray(HEADER_BYTES, HEADER_BYTES + length);
      this.buffered = this.buffered.subarray(HEADER_BYTES + length);
      this.onMessage({ type, payload });
    }
  }
}

/** Reads messages from a stream; a framing error destroys it. */
export function readMessages(stream: Duplex, onMessage: (msg: Message) => void): void {
  const reader = new MessageReader(onMessage);
  stream.on("data", (chunk: Buffer) => {
    try {
      reader.push(chunk);
    } catch (err) {
      stream.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  });
}

/** JSON from a peer; a malformed payload is a protocol error, not a crash. */
export function parseJson<T>(payload: Buffer): T {
  try {
    return JSON.parse(payload.toString("utf8")) as T;
  } catch {
    throw new WheellockError("ErrProtocol", "malformed JSON in an operation message");
  }
}

/** Bytes of a data message are sent in slices no larger than this. */
export const DATA_CHUNK_BYTES = 256 * 1024;

/** What messages are written to: a connection, or one operation's view of it. */
export interface MessageSink {
  write(data: Buffer): boolean;
  on(event: "drain" | "close", listener: () => void): unknown;
  off(event: "drain" | "close", listener: () => void): unknown;
}

/** Resolves once `stream` can take more, or is closed. */
export function drained(stream: MessageSink): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}

const awaitingDrain = new WeakSet<Writable>();

/**
 * Hands a received data message to the reader's stream; when that is full, pauses `source`
 * (the connection) until it drains, so the far side stops the producer. One waiter per
 * pause: messages already read from the connection when it paused add none (each added a
 * 'drain' listener: a MaxListenersExceededWarning under many small frames).
 */
export function deliverOrPause(
  target: Writable,
  data: Buffer,
  source: { pause(): void; resume(): void } | undefined,
): void {
  if (target.write(data) || source === undefined) return;
  source.pause();
  if (awaitingDrain.has(target)) return;
  awaitingDrain.add(target);
  target.once("drain", () => {
    awaitingDrain.delete(target);
    source.resume();
  });
}

/** Writes data messages, resolving when the stream can take more (backpressure). */
export async function writeData(stream: MessageSink, type: Msg, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length; at += DATA_CHUNK_BYTES) {
    if (!stream.write(encodeMessage(type, data.subarray(at, at + DATA_CHUNK_BYTES)))) {
      await drained(stream);
    }
  }
}

/** An error as it crosses the wire: code and message, errno for file errors. */
export function wireError(err: unknown): WireError {
  if (err instanceof ErrFile) {
    return { code: err.code, message: err.message, ...(err.errno ? { errno: err.errno } : {}) };
  }
  if (err instanceof WheellockError) return { code: err.code, message: err.message };
  return { code: "ErrExec", message: err instanceof Error ? err.message : String(err) };
}

/** The typed error a wire error stands for, so both sides of the wire throw the same classes. */
export function errorFromWire(wire: WireError, path?: string): WheellockError {
  if (wire.code !== "ErrFile") return reviveError(wire.code, wire.message);
  // ErrFile prefixes its path; the client knows the path it asked for.
  const prefix = path !== undefined ? `${path}: ` : "";
  const message = wire.message.startsWith(prefix)
    ? wire.message.slice(prefix.length)
    : wire.message;
  return reviveError("ErrFile", message, {
    path: path ?? "",
    ...(wire.errno !== undefined ? { errno: wire.errno } : {}),
  });
}
