/** The contract between the Channel mux and the per-operation stream handlers. */
import type { Frame } from "./frame.js";
import type { FrameSink, OutboundSender } from "./outbound.js";
import { RecvWindow } from "./credit.js";
import { decodeRecord } from "./record.js";
import { ErrorTag } from "./contract.js";

/** What handlers may ask of the channel. */
export interface StreamContext extends FrameSink {
  /** The reader consumed `bytes` of this stream's guest data. */
  consumed(streamId: number, bytes: number): void;
  /** Host gives up on a live stream: sends CLOSE and forgets it. */
  abandon(streamId: number): void;
}

export interface StreamHandler {
  readonly id: number;
  /** Guest -> host data accounting (checked by the channel before onFrame sees data). */
  readonly recv: RecvWindow;
  /** Host -> guest data, for streams that carry STDIN; CREDIT for other streams is ignored. */
  readonly sender: OutboundSender | undefined;
  /** Any frame but CREDIT. Returns true for the stream's terminal frame. Throws ErrProtocol. */
  onFrame(frame: Frame): boolean;
  /** The channel died (or the io ended): reject and destroy everything with `err`. */
  fail(err: Error): void;
}

export interface GuestErrorInfo {
  readonly message: string;
  readonly errno: number | undefined;
}

/** ERROR payload; MESSAGE is required so every failure reaching a user has words. */
export function decodeGuestError(payload: Buffer): GuestErrorInfo {
  const rec = decodeRecord(payload, "ERROR");
  return {
    message: rec.require(rec.string(ErrorTag.Message), "MESSAGE"),
    errno: rec.u32(ErrorTag.Errno),
  };
}

/** Opens new streams on the channel (what the request helpers in open.ts need of it). */
export interface StreamOpener {
  readonly ctx: StreamContext;
  open<T extends StreamHandler>(type: number, payload: Buffer, make: (id: number) => T): T;
}
