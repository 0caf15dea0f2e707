import type { UpstreamTcp, UpstreamTcpEvents } from "../upstream.js";
import { GuestStream } from "./guest-stream.js";
import { MAX_CLIENT_HELLO_BYTES, sniff, type Sniffed } from "./sniff.js";

export type FlowKind = Exclude<Sniffed, { kind: "need-more"; minBytes: number }>;

/**
 * One guest TCP flow in intercept mode, accepted at once. Its first bytes are held (bounded)
 * until they tell what protocol it speaks, or until `sniffTimeoutMs` passes with the question
 * open (then it is "other": a server-speaks-first protocol, or a stalled client). Then it
 * becomes a GuestStream, replaying the held bytes, and `onClassified` takes over.
 */
export class InterceptedFlow implements UpstreamTcp {
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Fewer bytes than this cannot change sniff's answer: no need to look again before. */
  private undecidedBelow = 0;
  private stream: GuestStream | undefined;
  private guestEnded = false;
  private finished = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly events: UpstreamTcpEvents,
    sniffTimeoutMs: number,
    private readonly onClassified: (kind: FlowKind, stream: GuestStream) => void,
  ) {
    this.timer = setTimeout(() => this.classify(true), sniffTimeoutMs).unref();
  }

  write(chunk: Buffer, onFlushed: () => void): void {
    if (this.stream) return this.stream.fromGuest(chunk, onFlushed);
    onFlushed(); // held bytes are bounded by MAX_CLIENT_HELLO_BYTES
    if (this.finished) return;
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    // Looking again at every segment would cost the square of what is held (a guest can send
    // one byte per segment).
    if (this.heldBytes >= this.undecidedBelow) this.classify(false);
  }

  end(): void {
    if (this.stream) return this.stream.guestEnded();
    this.guestEnded = true;
    this.classify(true);
  }

  destroy(): void {
    clearTimeout(this.timer);
    this.finished = true;
    this.stream?.destroy();
  }

  pause(): void {
    this.stream?.pauseToGuest();
  }

  resume(): void {
    this.stream?.resumeToGuest();
  }

  private classify(final: boolean): void {
    if (this.finished) return;
    const bytes = Buffer.concat(this.held, this.heldBytes);
    let result = sniff(bytes);
    if (result.kind === "need-more" && (final || bytes.length >= MAX_CLIENT_HELLO_BYTES))
      result = { kind: "other" };
    if (result.kind === "need-more") {
      this.held = [bytes];
      this.undecidedBelow = result.minBytes;
      return;
    }
    clearTimeout(this.timer);
    this.finished = true;
    this.held = [];
    const stream = new GuestStream(this.events);
    this.stream = stream;
    if (bytes.length > 0) stream.fromGuest(bytes, () => undefined);
    if (this.guestEnded) stream.guestEnded();
    this.onClassified(result, stream);
  }
}
