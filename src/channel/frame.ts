/**
 * Frame codec: the 16-byte header and an incremental parser. The parser sees guest bytes,
 * so it validates each header as soon as its 12 bytes are in and allocates at most
 * MAX_PAYLOAD per frame, whatever a corrupt length field claims.
 */
import { ErrProtocol } from "../errors.js";
import {
  FRAME_HEADER_BYTES,
  FRAME_MAGIC,
  MAX_PAYLOAD,
  frameTypeName,
  isFrameType,
  type FrameType,
} from "./contract.js";

export interface Frame {
  readonly type: FrameType;
  readonly streamId: number;
  /**
   * The session token the agent stamps on every frame it sends (0 until the first CONFIGURE);
   * the channel rejects frames without the current one. Host frames carry 0.
   */
  readonly token: number;
  /** May be a view into a chunk the parser was given; copy it if you keep it and mutate the chunk. */
  readonly payload: Buffer;
}

const MAX_U32 = 0xffffffff;

export function encodeFrameHeader(
  type: number,
  streamId: number,
  payloadBytes: number,
  token = 0,
): Buffer {
  if (!Number.isInteger(streamId) || streamId < 0 || streamId > MAX_U32) {
    throw new RangeError(`stream id out of range: ${streamId}`);
  }
  if (payloadBytes > MAX_PAYLOAD) {
    throw new RangeError(`frame payload of ${payloadBytes} bytes exceeds ${MAX_PAYLOAD}`);
  }
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header[0] = FRAME_MAGIC;
  header[1] = type;
  header.writeUInt16BE(0, 2);
  header.writeUInt32BE(streamId, 4);
  header.writeUInt32BE(payloadBytes, 8);
  header.writeUInt32BE(token, 12);
  return header;
}

/** One contiguous frame; for tests and small control frames (the channel writes header and payload separately). */
export function encodeFrame(
  type: number,
  streamId: number,
  payload: Uint8Array = Buffer.alloc(0),
  token = 0,
): Buffer {
  return Buffer.concat([encodeFrameHeader(type, streamId, payload.length, token), payload]);
}

/**
 * Turns a byte stream split at arbitrary points into frames. Whole payloads that sit inside
 * one input chunk are handed out as subarrays (no copy); only payloads that straddle chunks
 * are assembled into a buffer of exactly their (already validated) length.
 */
export class FrameParser {
  private readonly headerBytes = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerFill = 0;
  private type: FrameType | undefined;
  private streamId = 0;
  private token = 0;
  private payloadBytes = 0;
  private payload: Buffer | undefined;
  private payloadFill = 0;
  private stopped = false;

  constructor(private readonly onFrame: (frame: Frame) => void) {}

  /** Stops delivering frames, also in the middle of the current chunk (used when the channel dies). */
  stop(): void {
    this.stopped = true;
  }

  /** Throws ErrProtocol on corrupt input; after that the parser stays stopped. */
  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length && !this.stopped) {
      if (this.type === undefined) {
        offset = this.readHeader(chunk, offset);
        if (this.type !== undefined && this.payloadBytes === 0) this.emit(Buffer.alloc(0));
        continue;
      }
      const needed = this.payloadBytes - this.payloadFill;
      const available = chunk.length - offset;
      if (this.payload === undefined && available >= needed) {
        this.emit(chunk.subarray(offset, offset + needed));
        offset += needed;
        continue;
      }
      // Bounded: payloadBytes was checked against MAX_PAYLOAD in readHeader.
      this.payload ??= Buffer.allocUnsafe(this.payloadBytes);
      const take = Math.min(needed, available);
      chunk.copy(this.payload, this.payloadFill, offset, offset + take);
      this.payloadFill += take;
      offset += take;
      if (this.payloadFill === this.payloadBytes) this.emit(this.payload);
    }
  }

  private readHeader(chunk: Buffer, offset: number): number {
    let header: Buffer;
    let next: number;
    if (this.headerFill === 0 && chunk.length - offset >= FRAME_HEADER_BYTES) {
      header = chunk;
      next = offset + FRAME_HEADER_BYTES;
    } else {
      const take = Math.min(FRAME_HEADER_BYTES - this.headerFill, chunk.length - offset);
      chunk.copy(this.headerBytes, this.headerFill, offset, offset + take);
      this.headerFill += take;
      if (this.headerFill < FRAME_HEADER_BYTES) return offset + take;
      header = this.headerBytes;
      next = offset + take;
      offset = 0;
    }
    this.headerFill = 0;
    const magic = header[offset];
    const type = header[offset + 1] ?? 0;
    const reserved = header.readUInt16BE(offset + 2);
    const streamId = header.readUInt32BE(offset + 4);
    const length = header.readUInt32BE(offset + 8);
    const token = header.readUInt32BE(offset + 12);
    if (magic !== FRAME_MAGIC) this.fail(`bad frame magic 0x${(magic ?? 0).toString(16)}`);
    if (!isFrameType(type)) this.fail(`unknown frame type ${frameTypeName(type)}`);
    if (reserved !== 0) this.fail(`non-zero reserved field in ${frameTypeName(type)} frame`);
    if (length > MAX_PAYLOAD) {
      this.fail(`${frameTypeName(type)} frame length ${length} exceeds ${MAX_PAYLOAD}`);
    }
    this.type = type as FrameType;
    this.streamId = streamId;
    this.token = token;
    this.payloadBytes = length;
    return next;
  }

  private emit(payload: Buffer): void {
    const frame: Frame = {
      type: this.type as FrameType,
      streamId: this.streamId,
      token: this.token,
      payload,
    };
    this.type = undefined;
    this.payload = undefined;
    this.payloadFill = 0;
    this.payloadBytes = 0;
    this.onFrame(frame);
  }

  private fail(message: string): never {
    this.stopped = true;
    throw new ErrProtocol(message);
  }
}
