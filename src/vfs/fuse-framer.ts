/**
 * Splits the relay's byte stream into FUSE requests. The stream is self-delimiting (each
 * request starts with its own length), so a length outside [40, MAX_REQUEST_BYTES] means the
 * stream can no longer be trusted: the framer stops and reports it instead of guessing, and
 * never buffers more than one maximal request.
 */
import { IN_HEADER_BYTES, MAX_REQUEST_BYTES } from "./fuse-constants.js";

export interface FuseInHeader {
  readonly lengthBytes: number;
  readonly opcode: number;
  readonly unique: bigint;
  readonly nodeid: bigint;
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  /**
   * The in-header's last 4 bytes (`padding`, 0 from the kernel). The guest's relay sets
   * RELAY_ANSWERED_FLAG there on a request it already answered itself (write-behind); the
   * server uses it only to order requests (fuse-server.ts), never to trust anything.
   */
  readonly relayFlags?: number;
}

export interface FuseRequest {
  readonly header: FuseInHeader;
  /** The bytes after the header; a view the request owns (copied out of the stream). */
  readonly body: Buffer;
}

export function decodeInHeader(buf: Buffer): FuseInHeader {
  return {
    lengthBytes: buf.readUInt32LE(0),
    opcode: buf.readUInt32LE(4),
    unique: buf.readBigUInt64LE(8),
    nodeid: buf.readBigUInt64LE(16),
    uid: buf.readUInt32LE(24),
    gid: buf.readUInt32LE(28),
    pid: buf.readUInt32LE(32),
    relayFlags: buf.readUInt32LE(36),
  };
}

/** Encodes a request; used by tests and the fake kernel. */
export function encodeRequest(
  header: Omit<FuseInHeader, "lengthBytes">,
  body: Buffer = Buffer.alloc(0),
): Buffer {
  const buf = Buffer.alloc(IN_HEADER_BYTES + body.length);
  buf.writeUInt32LE(buf.length, 0);
  buf.writeUInt32LE(header.opcode, 4);
  buf.writeBigUInt64LE(header.unique, 8);
  buf.writeBigUInt64LE(header.nodeid, 16);
  buf.writeUInt32LE(header.uid, 24);
  buf.writeUInt32LE(header.gid, 28);
  buf.writeUInt32LE(header.pid, 32);
  buf.writeUInt32LE(header.relayFlags ?? 0, 36);
  body.copy(buf, IN_HEADER_BYTES);
  return buf;
}

export class FuseFramer {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private failed = false;

  constructor(
    private readonly onRequest: (request: FuseRequest) => void,
    private readonly onCorrupt: (reason: string) => void,
    private readonly maxRequestBytes = MAX_REQUEST_BYTES,
  ) {}

  private paused = false;

  push(chunk: Buffer): void {
    if (this.failed) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.drain();
  }

  /** Holds back requests already received (the rest of a chunk) until `resume`. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.drain();
  }

  private drain(): void {
    while (!this.failed && !this.paused && this.pendingBytes >= IN_HEADER_BYTES) {
      const head = this.peek(4);
      const lengthBytes = head.readUInt32LE(0);
      if (lengthBytes < IN_HEADER_BYTES || lengthBytes > this.maxRequestBytes) {
        this.failed = true;
        this.pending = [];
        this.pendingBytes = 0;
        this.onCorrupt(`request length ${lengthBytes} out of range`);
        return;
      }
      if (this.pendingBytes < lengthBytes) return;
      const message = this.take(lengthBytes);
      this.onRequest({
        header: decodeInHeader(message),
        body: message.subarray(IN_HEADER_BYTES),
      });
    }
  }

  private peek(bytes: number): Buffer {
    const first = this.pending[0];
    if (first !== undefined && first.length >= bytes) return first;
    const joined = Buffer.concat(this.pending);
    this.pending = [joined];
    return joined;
  }

  /** Removes `bytes` from the front, as a fresh copy so later chunks can't alias it. */
  private take(bytes: number): Buffer {
    const joined = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    const message = Buffer.from(joined.subarray(0, bytes));
    const rest = joined.subarray(bytes);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingBytes = rest.length;
    return message;
  }
}
