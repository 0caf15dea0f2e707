/**
 * One operation's view of a connection that may carry several, one after another (see
 * protocol.ts). The operation writes, pauses and waits for 'drain' through it as it would on
 * the connection; once the operation is over the view is detached: what the operation still
 * writes is dropped, a pause it left is undone, and its 'close' listeners run, so nothing of
 * it reaches the next operation on the connection.
 */
import { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import { encodeMessage, Msg, SERVER_OP_END } from "./protocol.js";

/** A client's OP_END, for a server that waits for one (see protocol.ts). */
const CLIENT_OP_END = encodeMessage(Msg.OpEnd);

export class OperationStream extends EventEmitter {
  private over = false;
  private pausedByOp = false;
  private readonly onDrain = (): void => void this.emit("drain");
  private readonly onClose = (): void => this.detach();

  constructor(readonly conn: Duplex) {
    super();
    conn.on("drain", this.onDrain);
    conn.once("close", this.onClose);
  }

  /** The operation is over (ended, or its connection closed). */
  get destroyed(): boolean {
    return this.over;
  }

  write(data: Buffer): boolean {
    if (this.over) return true;
    return this.conn.write(data);
  }

  pause(): this {
    if (!this.over) {
      this.pausedByOp = true;
      this.conn.pause();
    }
    return this;
  }

  resume(): this {
    if (!this.over) {
      this.pausedByOp = false;
      this.conn.resume();
    }
    return this;
  }

  /**
   * The server ends the operation cleanly: `last` (its terminal message, if any) and OP_END
   * in one write; the connection stays open for the next operation.
   */
  end(last?: Buffer): void {
    if (this.over) return;
    this.conn.write(last ? Buffer.concat([last, SERVER_OP_END]) : SERVER_OP_END);
    this.detach();
  }

  /**
   * The client's end of an operation the server ended: an older server waits for the
   * client's OP_END (`answer`), a current one for nothing.
   */
  finish(answer: boolean): void {
    if (this.over) return;
    if (answer) this.conn.write(CLIENT_OP_END);
    this.detach();
  }

  /**
   * Ends the operation abnormally: the connection is closed, since it may be mid-message or
   * the peer still busy with the operation; it is never used again.
   */
  destroy(): void {
    if (this.over) return;
    this.conn.destroy();
    this.detach();
  }

  private detach(): void {
    if (this.over) return;
    this.over = true;
    this.conn.off("drain", this.onDrain);
    this.conn.off("close", this.onClose);
    if (this.pausedByOp) this.conn.resume();
    // Writers waiting for room go on (their writes are dropped now), then cleanups run.
    this.emit("drain");
    this.emit("close");
  }
}
