/**
 * Record-in, record-out operations (PING, CONFIGURE, FILE_STAT, ...) and file transfers
 * (FILE_WRITE: STDIN then EOF; FILE_READ: STDOUT then OK with SIZE).
 */
import type { Readable } from "node:stream";
import { ErrProtocol } from "../errors.js";
import { decodeAttributeReply, decodeUsageReply } from "./attribution.js";
import { FileListOkTag, FileReadOkTag, FrameType, frameTypeName } from "./contract.js";
import { RecvWindow } from "./credit.js";
import { Deferred } from "./deferred.js";
import type { Frame } from "./frame.js";
import { GuestExecError, GuestFileError } from "./guest-error.js";
import { CreditedReadable } from "./inbound.js";
import { OutboundSender } from "./outbound.js";
import { decodeRecord, type DecodedRecord } from "./record.js";
import { decodeListEntry, decodeStat } from "./stat.js";
import { decodeGuestError, type StreamContext, type StreamHandler } from "./streams.js";

/** Operations whose reply is one record (no data frames); `openRequest()` accepts only these. */
export const RECORD_REQUEST_TYPES: ReadonlySet<number> = new Set<number>([
  FrameType.Configure,
  FrameType.Ping,
  FrameType.NetworkSetup,
  FrameType.Attribute,
  FrameType.Usage,
  FrameType.Mount,
  FrameType.FileList,
  FrameType.FileStat,
  FrameType.Mkdir,
  FrameType.Remove,
  FrameType.DiskMount,
]);
const FILE_REQUEST_TYPES: ReadonlySet<number> = new Set<number>([
  FrameType.FileList,
  FrameType.FileStat,
  FrameType.Mkdir,
  FrameType.Remove,
]);

/** Builds the error a guest ERROR becomes: ErrFile for path operations, ErrExec otherwise. */
export function guestFailure(
  requestType: number,
  path: string | undefined,
  payload: Buffer,
): Error {
  const info = decodeGuestError(payload);
  if (path !== undefined && FILE_REQUEST_TYPES.has(requestType)) {
    return new GuestFileError(path, info.message, info.errno);
  }
  return new GuestExecError(`${frameTypeName(requestType)}: ${info.message}`, info.errno);
}

/** Reads the reply fields the sandbox will rely on now, so a malformed reply is fatal here. */
function validateReply(requestType: number, rec: DecodedRecord): void {
  if (requestType === FrameType.FileStat) decodeStat(rec);
  if (requestType === FrameType.FileList) rec.records(FileListOkTag.Entry).forEach(decodeListEntry);
  if (requestType === FrameType.Attribute) decodeAttributeReply(rec);
  if (requestType === FrameType.Usage) decodeUsageReply(rec);
}

export class RequestHandle implements StreamHandler {
  readonly recv = new RecvWindow();
  readonly sender = undefined;
  readonly result = new Deferred<DecodedRecord>();

  constructor(
    readonly id: number,
    private readonly requestType: number,
    private readonly path: string | undefined,
  ) {}

  onFrame(frame: Frame): boolean {
    const what = `${frameTypeName(this.requestType)} reply`;
    if (frame.type === FrameType.Ok) {
      const rec = decodeRecord(frame.payload, what);
      validateReply(this.requestType, rec);
      this.result.resolve(rec);
      return true;
    }
    if (frame.type === FrameType.Error) {
      this.result.reject(guestFailure(this.requestType, this.path, frame.payload));
      return true;
    }
    throw new ErrProtocol(
      `unexpected ${frameTypeName(frame.type)} on ${frameTypeName(this.requestType)} stream ${this.id}`,
    );
  }

  fail(err: Error): void {
    this.result.reject(err);
  }
}

export class WriteFileHandle implements StreamHandler {
  readonly recv = new RecvWindow();
  readonly sender: OutboundSender;
  readonly result = new Deferred<void>();

  constructor(
    readonly id: number,
    ctx: StreamContext,
    private readonly path: string,
  ) {
    this.sender = new OutboundSender(ctx, id);
  }

  onFrame(frame: Frame): boolean {
    if (frame.type === FrameType.Ok) {
      // The guest cannot know the file is complete before EOF; an early OK is a lie.
      if (!this.sender.eof) throw new ErrProtocol(`OK before EOF on FILE_WRITE stream ${this.id}`);
      decodeRecord(frame.payload, "FILE_WRITE reply");
      this.sender.discard();
      this.result.resolve();
      return true;
    }
    if (frame.type === FrameType.Error) {
      const info = decodeGuestError(frame.payload);
      this.fail(new GuestFileError(this.path, info.message, info.errno));
      return true;
    }
    throw new ErrProtocol(
      `unexpected ${frameTypeName(frame.type)} on FILE_WRITE stream ${this.id}`,
    );
  }

  fail(err: Error): void {
    this.sender.fail(err);
    this.result.reject(err);
  }
}

export class ReadFileHandle implements StreamHandler {
  readonly recv = new RecvWindow();
  readonly sender = undefined;
  readonly readable: CreditedReadable;
  private receivedBytes = 0;
  private live = true;

  constructor(
    readonly id: number,
    ctx: StreamContext,
    private readonly path: string,
  ) {
    this.readable = new CreditedReadable({
      onConsumed: (bytes) => this.live && ctx.consumed(id, bytes),
      onAbandon: () => {
        if (!this.live) return;
        this.live = false;
        ctx.abandon(id);
      },
    });
  }

  get stream(): Readable {
    return this.readable;
  }

  onFrame(frame: Frame): boolean {
    switch (frame.type) {
      case FrameType.Stdout:
        this.receivedBytes += frame.payload.length;
        this.readable.deliver(frame.payload);
        return false;
      case FrameType.Ok: {
        const rec = decodeRecord(frame.payload, "FILE_READ reply");
        const size = rec.require(rec.u64(FileReadOkTag.Size), "SIZE");
        if (size !== this.receivedBytes) {
          throw new ErrProtocol(
            `FILE_READ reply SIZE ${size} but ${this.receivedBytes} bytes were sent`,
          );
        }
        this.live = false;
        this.readable.finish();
        return true;
      }
      case FrameType.Error: {
        const info = decodeGuestError(frame.payload);
        this.fail(new GuestFileError(this.path, info.message, info.errno));
        return true;
      }
      default:
        throw new ErrProtocol(
          `unexpected ${frameTypeName(frame.type)} on FILE_READ stream ${this.id}`,
        );
    }
  }

  fail(err: Error): void {
    this.live = false;
    this.readable.fail(err);
  }
}
