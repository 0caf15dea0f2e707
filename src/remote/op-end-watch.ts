/**
 * Finds the server's OP_END messages in a byte stream of protocol messages as it passes, for
 * a relay that must know where operations end without taking the stream apart: it reads only
 * headers (and an OP_END's flags byte) and copies no payload.
 */
import { HEADER_BYTES, Msg } from "./protocol.js";

export class OpEndWatch {
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerHave = 0;
  /** Payload bytes of the current message still to pass. */
  private payloadLeft = 0;
  /** The current payload is an OP_END's: its first byte is the flags. */
  private inOpEnd = false;

  /** `onOpEnd(flags)`: 0 for an OP_END without flags. */
  constructor(private readonly onOpEnd: (flags: number) => void) {}

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.payloadLeft > 0) {
        if (this.inOpEnd) {
          this.inOpEnd = false;
          this.onOpEnd(chunk[at] ?? 0);
        }
        const passed = Math.min(this.payloadLeft, chunk.length - at);
        this.payloadLeft -= passed;
        at += passed;
        continue;
      }
      const taken = Math.min(HEADER_BYTES - this.headerHave, chunk.length - at);
      chunk.copy(this.header, this.headerHave, at, at + taken);
      this.headerHave += taken;
      at += taken;
      if (this.headerHave < HEADER_BYTES) return;
      this.headerHave = 0;
      this.payloadLeft = this.header.readUInt32BE(1);
      if (this.header[0] !== Msg.OpEnd) continue;
      if (this.payloadLeft === 0) this.onOpEnd(0);
      else this.inOpEnd = true;
    }
  }
}
