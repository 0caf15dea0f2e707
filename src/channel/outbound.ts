/**
 * Host -> guest data: cuts bytes into STDIN frames that never exceed the granted window or
 * MAX_PAYLOAD, and a Writable whose write callback waits for that (so Node's ordinary
 * backpressure — write() returning false, 'drain', pipeline — follows the guest's credit).
 */
import { Writable } from "node:stream";
import { FrameType, MAX_PAYLOAD } from "./contract.js";
import { SendWindow } from "./credit.js";

/** What a sender needs from the channel. */
export interface FrameSink {
  send(type: number, streamId: number, payload?: Uint8Array): void;
  /** Resolves when the transport has room again (its own backpressure, separate from credit). */
  whenWritable(): Promise<void>;
}

export class OutboundSender {
  readonly window = new SendWindow();
  private eofSent = false;
  /** After the guest ended the stream, data has nowhere to go: drop it, like /dev/null. */
  private discarding = false;
  private failure: Error | undefined;

  constructor(
    private readonly sink: FrameSink,
    private readonly streamId: number,
  ) {}

  get eof(): boolean {
    return this.eofSent;
  }

  async sendData(data: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < data.length && !this.discarding) {
      try {
        await this.window.whenOpen();
      } catch {
        if (this.failure === undefined) return; // discarded, not failed
        throw this.failure;
      }
      if (this.discarding) return;
      const n = this.window.take(Math.min(data.length - offset, MAX_PAYLOAD));
      this.sink.send(FrameType.Stdin, this.streamId, data.subarray(offset, offset + n));
      offset += n;
      await this.sink.whenWritable();
    }
  }

  sendEof(): void {
    if (this.eofSent || this.discarding) return;
    this.eofSent = true;
    this.sink.send(FrameType.Eof, this.streamId);
  }

  /** The stream is over on the guest side; pending and later writes succeed without sending. */
  discard(): void {
    this.discarding = true;
    this.window.fail(new Error("stream ended"));
  }

  /** The stream failed: pending sends reject with `err`. */
  fail(err: Error): void {
    this.discarding = true;
    this.failure ??= err;
    this.window.fail(err);
  }
}

export class CreditedWritable extends Writable {
  constructor(private readonly sender: OutboundSender) {
    super({ highWaterMark: MAX_PAYLOAD / 4 });
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    this.sender.sendData(chunk).then(
      () => callback(),
      (err: Error) => callback(err),
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.sender.sendEof();
    callback();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    // Like closing a pipe: a destroyed stdin means the child sees end of input.
    this.sender.sendEof();
    callback(err);
  }
}
