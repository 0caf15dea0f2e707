/**
 * The control socket protocol between a sandbox's supervisor and its clients (CLI, SDK). One
 * operation per connection: the client sends REQUEST (JSON), then data frames in both
 * directions, and the supervisor ends with EXIT, RESULT or ERROR. Frames are
 * `[type u8][length u32 BE][payload]`. Both ends are local and trusted as much as the user who
 * owns the data dir, but lengths are still bounded so a confused peer cannot exhaust memory.
 */
import type { Socket } from "node:net";

export const Msg = {
  /** C→S JSON `ControlRequest`. */
  Request: 1,
  /** S→C raw bytes (exec stdout, file contents, port-forward data). */
  Stdout: 2,
  /** S→C raw bytes. */
  Stderr: 3,
  /** C→S raw bytes; an empty payload is EOF. */
  Stdin: 4,
  /** S→C JSON `{ exitCode, signal }` as the guest reported it. Terminal. */
  Exit: 5,
  /** C→S JSON `{ rows, cols }`. */
  Resize: 6,
  /** C→S JSON `{ signal }` (a number). */
  Signal: 7,
  /** S→C JSON (operation specific). Terminal. */
  Result: 8,
  /** S→C JSON `{ code, message, errno? }`. Terminal. */
  Error: 9,
  /** S→C JSON `{ pid }`: the exec started. */
  Started: 10,
  /** S→C empty: a port-forward's guest side closed its write direction. */
  Eof: 11,
} as const;
export type Msg = (typeof Msg)[keyof typeof Msg];

export const MAX_MESSAGE_BYTES = 1024 * 1024;
const HEADER_BYTES = 5;

export type ControlRequest =
  | {
      op: "exec";
      argv: string[];
      cwd?: string;
      user?: string;
      env?: Record<string, string>;
      tty?: { rows: number; cols: number };
    }
  | { op: "read-file"; path: string }
  | { op: "write-file"; path: string; mode?: number }
  | { op: "list-files"; path: string }
  | { op: "stat"; path: string; followSymlinks?: boolean }
  | { op: "mkdir"; path: string; mode?: number }
  | { op: "remove"; path: string; recursive?: boolean }
  | { op: "port-forward"; port: number }
  | { op: "allow-list"; action: "add" | "delete"; hosts: string[] }
  | { op: "stop" };

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

/** Reads messages from a socket; a parse error destroys it. */
export function readMessages(socket: Socket, onMessage: (msg: Message) => void): void {
  const reader = new MessageReader(onMessage);
  socket.on("data", (chunk: Buffer) => {
    try {
      reader.push(chunk);
    } catch (err) {
      socket.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  });
}

export function parseJson<T>(payload: Buffer): T {
  return JSON.parse(payload.toString("utf8")) as T;
}

/** Bytes of a data frame are sent in slices no larger than this. */
export const DATA_CHUNK_BYTES = 256 * 1024;

/** Writes data frames, resolving when the socket can take more (backpressure). */
export async function writeData(socket: Socket, type: Msg, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length || (at === 0 && data.length === 0);) {
    const slice = data.subarray(at, at + DATA_CHUNK_BYTES);
    at += Math.max(slice.length, 1);
    if (!socket.write(encodeMessage(type, slice))) {
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off("drain", done);
          socket.off("close", done);
          resolve();
        };
        socket.on("drain", done);
        socket.on("close", done);
      });
    }
    if (data.length === 0) break;
  }
}
