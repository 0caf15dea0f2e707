/**
 * PORT_FORWARD streams: a TCP connection the guest agent opened to 127.0.0.1:PORT. STARTED
 * (empty) when connected, then STDOUT data and at most one EOF from the guest, STDIN data and
 * EOF from the host, and OK once both directions are over; ERROR if the connect failed.
 */
import { ErrProtocol } from "../errors.js";
import { FrameType, frameTypeName } from "./contract.js";
import { RecvWindow } from "./credit.js";
import { Deferred } from "./deferred.js";
import type { Frame } from "./frame.js";
import { GuestExecError } from "./guest-error.js";
import { CreditedReadable } from "./inbound.js";
import { CreditedWritable, OutboundSender } from "./outbound.js";

/**
 * The guest has no socket to write to before it connected: data and EOF wait for STARTED
 * (and are dropped quietly if the connect fails; `connected` reports why).
 */
class HeldWritable extends CreditedWritable {
  constructor(
    sender: OutboundSender,
    private readonly connected: Promise<void>,
  ) {
    super(sender);
  }

  override _write(chunk: Buffer, enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.connected.then(
      () => super._write(chunk, enc, cb),
      () => cb(),
    );
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.connected.then(
      () => super._final(cb),
      () => cb(),
    );
  }
}
import { decodeRecord } from "./record.js";
import { decodeGuestError, type StreamContext, type StreamHandler } from "./streams.js";

export interface PortStream {
  /** Resolves once the guest connected; rejects with the guest's reason (ECONNREFUSED, ...). */
  readonly connected: Promise<void>;
  /** Bytes from the guest service; ends when it closed its side. */
  readonly readable: CreditedReadable;
  /** Bytes to the guest service; end() half-closes the connection. */
  readonly writable: CreditedWritable;
  /** Resolves when both directions are over. */
  readonly done: Promise<void>;
  /** Abandons the connection (the guest closes its socket). */
  close(): void;
}

const noop = (): void => undefined;

export class PortHandle implements PortStream, StreamHandler {
  readonly recv = new RecvWindow();
  readonly sender: OutboundSender;
  readonly readable: CreditedReadable;
  readonly writable: CreditedWritable;
  private readonly connectedD = new Deferred<void>();
  private readonly doneD = new Deferred<void>();
  private live = true;
  private guestEof = false;

  constructor(
    readonly id: number,
    private readonly ctx: StreamContext,
  ) {
    this.readable = new CreditedReadable({
      onConsumed: (bytes: number) => this.live && this.ctx.consumed(this.id, bytes),
    });
    this.sender = new OutboundSender(ctx, id);
    this.writable = new HeldWritable(this.sender, this.connectedD.promise);
    this.readable.on("error", noop);
    this.writable.on("error", noop);
    this.connectedD.promise.catch(noop);
    this.doneD.promise.catch(noop);
  }

  get connected(): Promise<void> {
    return this.connectedD.promise;
  }

  get done(): Promise<void> {
    return this.doneD.promise;
  }

  close(): void {
    if (!this.live) return;
    this.live = false;
    this.ctx.abandon(this.id);
    this.readable.finish();
    this.sender.discard();
    this.connectedD.resolve();
    this.doneD.resolve();
  }

  onFrame(frame: Frame): boolean {
    switch (frame.type) {
      case FrameType.Started:
        if (this.connectedD.isSettled) throw new ErrProtocol(`STARTED twice on stream ${this.id}`);
        decodeRecord(frame.payload, "STARTED");
        this.connectedD.resolve();
        return false;
      case FrameType.Stdout:
        this.requireConnected(frame.type);
        if (this.guestEof) throw new ErrProtocol(`STDOUT after EOF on stream ${this.id}`);
        this.readable.deliver(frame.payload);
        return false;
      case FrameType.Eof:
        this.requireConnected(frame.type);
        if (this.guestEof || frame.payload.length !== 0)
          throw new ErrProtocol(`bad EOF on port stream ${this.id}`);
        this.guestEof = true;
        this.readable.finish();
        return false;
      case FrameType.Ok:
        this.requireConnected(frame.type);
        decodeRecord(frame.payload, "PORT_FORWARD reply");
        this.live = false;
        this.readable.finish();
        this.sender.discard();
        this.doneD.resolve();
        return true;
      case FrameType.Error: {
        const info = decodeGuestError(frame.payload);
        this.fail(new GuestExecError(info.message, info.errno));
        return true;
      }
      default:
        throw new ErrProtocol(`unexpected ${frameTypeName(frame.type)} on port stream ${this.id}`);
    }
  }

  fail(err: Error): void {
    this.live = false;
    this.connectedD.reject(err);
    this.doneD.reject(err);
    this.readable.fail(err);
    this.sender.fail(err);
  }

  private requireConnected(type: number): void {
    if (!this.connectedD.isSettled)
      throw new ErrProtocol(`${frameTypeName(type)} before STARTED on stream ${this.id}`);
  }
}
