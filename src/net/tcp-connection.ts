import { randomInt } from "node:crypto";
import type { ByteBudget } from "./byte-budget.js";
import { ByteQueue } from "./byte-queue.js";
import {
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  seqAdd,
  seqDiff,
  type TcpOutSegment,
  type TcpSegment,
} from "./tcp-segment.js";
import type { UpstreamTcp, UpstreamTcpEvents } from "./upstream.js";

export interface TcpTuning {
  /** Largest segment payload we send, before the guest's MSS is applied. */
  maxSegmentBytes: number;
  /** Most guest bytes we accept ahead of the upstream socket draining (our receive window). */
  receiveWindowBytes: number;
  /** Most upstream bytes buffered for the guest before the upstream socket is paused. */
  sendBufferBytes: number;
  initialRtoMs: number;
  maxRtoMs: number;
  /** Consecutive retransmission timeouts without any ACK before the flow is reset. */
  maxRetransmits: number;
}

export const DEFAULT_TCP_TUNING: TcpTuning = {
  maxSegmentBytes: 65480,
  receiveWindowBytes: 1 << 20,
  sendBufferBytes: 1 << 20,
  initialRtoMs: 200,
  maxRtoMs: 10_000,
  maxRetransmits: 10,
};

/** Our window-scale shift: 1 MiB windows need more than the 16-bit field. */
const OUR_WINDOW_SHIFT = 7;
/** RFC 879 default when the guest's SYN carries no MSS option. */
const DEFAULT_GUEST_MSS = 536;

type State = "connecting" | "syn-received" | "established" | "closed";

export interface TcpConnectionHooks {
  /** Shared by all flows of the guest; this flow's buffered bytes count against it. */
  budget: ByteBudget;
  emit(seg: TcpOutSegment): void;
  /** False while the link to the guest is congested; `pump()` is called again when it drains. */
  linkWritable(): boolean;
  /** The flow is over; the owner forgets it. */
  onClosed(): void;
}

/**
 * One guest TCP flow terminated on the host and relayed to an upstream connection. The guest
 * is the client: it sent the SYN; we answer only once the upstream connection is up, so a
 * refused dial becomes a reset the guest sees as "connection refused".
 */
export class TcpConnection implements UpstreamTcpEvents {
  private state: State = "connecting";
  private upstream: UpstreamTcp | undefined;
  private rcvNxt: number;
  private readonly iss = randomInt(0, 0xffffffff);
  private sndUna = this.iss;
  private sndNxt = this.iss;
  /**
   * The highest sequence number sent so far. A retransmission timer sets sndNxt back to sndUna;
   * an ACK that arrives after that still acknowledges bytes sent once, up to here.
   */
  private sndMax = this.iss;
  private readonly sendQueue = new ByteQueue();
  private guestMss: number;
  private readonly guestShift: number;
  private readonly ourShift: number;
  private guestWindowBytes: number;
  private upstreamEnded = false;
  private finSent = false;
  private finAcked = false;
  private guestFinReceived = false;
  private upstreamPaused = false;
  private lastAdvertisedBytes = 0;
  /** Bytes written upstream and not yet flushed (held against the budget). */
  private unflushedBytes = 0;
  private rtoMs: number;
  private retransmits = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    syn: TcpSegment,
    private readonly tuning: TcpTuning,
    private readonly hooks: TcpConnectionHooks,
  ) {
    this.rcvNxt = seqAdd(syn.seq, 1);
    this.guestMss = Math.max(64, syn.mss ?? DEFAULT_GUEST_MSS);
    // Window scaling is used only when both SYNs carry the option (RFC 7323).
    this.guestShift = syn.windowScale ?? 0;
    this.ourShift = syn.windowScale !== undefined ? OUR_WINDOW_SHIFT : 0;
    this.guestWindowBytes = syn.window; // never scaled in a SYN
    this.rtoMs = tuning.initialRtoMs;
  }

  attach(upstream: UpstreamTcp): void {
    this.upstream = upstream;
  }

  get closed(): boolean {
    return this.state === "closed";
  }

  // ---- upstream events ----

  onConnect(): void {
    if (this.state !== "connecting") return;
    this.state = "syn-received";
    this.sendSynAck();
    this.armTimer();
  }

  onData(chunk: Buffer): void {
    if (this.state === "closed") return;
    this.sendQueue.push(chunk);
    this.hooks.budget.take(chunk.length);
    const full =
      this.sendQueue.lengthBytes >= this.tuning.sendBufferBytes || this.hooks.budget.exhausted;
    if (full && !this.upstreamPaused) {
      this.upstreamPaused = true;
      this.upstream?.pause();
    }
    this.pump();
  }

  onEnd(): void {
    if (this.state === "closed") return;
    this.upstreamEnded = true;
    this.pump();
  }

  onDrain(): void {
    this.reopenWindow();
  }

  /** Reopens a window that backpressure had shrunk, or the guest would wait for a probe. */
  private reopenWindow(): void {
    if (this.state !== "established") return;
    if (this.lastAdvertisedBytes < this.tuning.receiveWindowBytes / 2) this.sendAck();
  }

  /** The shared budget has room again: continue whatever it had stopped. */
  onBudgetFreed(): void {
    this.maybeResumeUpstream();
    this.reopenWindow();
  }

  private maybeResumeUpstream(): void {
    if (!this.upstreamPaused || this.state === "closed") return;
    if (this.sendQueue.lengthBytes >= this.tuning.sendBufferBytes / 2) return;
    if (this.hooks.budget.exhausted) return;
    this.upstreamPaused = false;
    this.upstream?.resume();
  }

  onError(): void {
    if (this.state === "closed") return;
    if (this.state === "connecting") {
      this.hooks.emit(this.segment(TCP_RST | TCP_ACK, 0));
    } else {
      this.hooks.emit(this.segment(TCP_RST | TCP_ACK, this.sndNxt));
    }
    this.close();
  }

  // ---- guest segments ----

  handleSegment(seg: TcpSegment): void {
    if (this.state === "closed") return;
    if (seg.flags & TCP_RST) {
      if (this.inReceiveWindow(seg.seq)) this.abort();
      return;
    }
    if (seg.flags & TCP_SYN) {
      // A retransmitted SYN: our SYN-ACK was lost (or is still being dialed).
      if (this.state === "syn-received" && seqAdd(seg.seq, 1) === this.rcvNxt) this.sendSynAck();
      return;
    }
    if (this.state === "connecting" || !(seg.flags & TCP_ACK)) return;
    if (this.state === "syn-received") {
      if (seg.ack !== seqAdd(this.iss, 1)) {
        this.hooks.emit(this.segment(TCP_RST, seg.ack));
        return;
      }
      this.state = "established";
      this.sndUna = this.sndNxt = this.sndMax = seg.ack;
      this.retransmits = 0;
      this.clearTimer();
    }
    if (!this.processAck(seg)) return;
    if (this.state !== "established") return;
    this.processData(seg);
    this.pump();
    this.maybeFinish();
  }

  private inReceiveWindow(seq: number): boolean {
    const d = seqDiff(seq, this.rcvNxt);
    return d >= 0 && d <= Math.max(this.tuning.receiveWindowBytes, 1);
  }

  /**
   * False when the segment acknowledges data never sent: it is answered with an ACK and
   * dropped, data and all (RFC 793; RFC 5961 section 5 against blind injection).
   */
  private processAck(seg: TcpSegment): boolean {
    const acked = seqDiff(seg.ack, this.sndUna);
    const outstanding = seqDiff(this.sndMax, this.sndUna);
    if (acked > outstanding) {
      this.sendAck();
      return false;
    }
    if (acked < 0) return true; // an old duplicate: its window is stale too
    this.guestWindowBytes = seg.window << this.guestShift;
    this.retransmits = 0; // any ACK proves the guest is alive (zero-window waits included)
    if (acked === 0) return true;
    const dataAcked = Math.min(acked, this.sendQueue.lengthBytes);
    this.sendQueue.drop(dataAcked);
    this.hooks.budget.release(dataAcked);
    // Beyond the data only the FIN can be acknowledged (sent once, even if the timer has
    // since gone back to resend it).
    if (acked > dataAcked) this.finSent = this.finAcked = true;
    this.sndUna = seg.ack;
    if (seqDiff(this.sndUna, this.sndNxt) > 0) this.sndNxt = this.sndUna;
    this.retransmits = 0;
    this.rtoMs = this.tuning.initialRtoMs;
    this.clearTimer();
    if (seqDiff(this.sndNxt, this.sndUna) > 0) this.armTimer();
    this.maybeResumeUpstream();
    return true;
  }

  private processData(seg: TcpSegment): void {
    const fin = (seg.flags & TCP_FIN) !== 0;
    if (seg.payload.length === 0 && !fin) return;
    if (seg.seq !== this.rcvNxt || this.guestFinReceived) {
      // Out of order or a duplicate: no reassembly buffer (bounded memory); the guest resends.
      this.sendAck();
      return;
    }
    const window = this.receiveWindowBytes();
    const accepted = seg.payload.subarray(0, window);
    if (accepted.length > 0 && this.upstream) {
      const n = accepted.length;
      this.unflushedBytes += n;
      this.hooks.budget.take(n);
      this.upstream.write(accepted, () => this.flushed(n));
      this.rcvNxt = seqAdd(this.rcvNxt, accepted.length);
    }
    if (fin && accepted.length === seg.payload.length) {
      this.rcvNxt = seqAdd(this.rcvNxt, 1);
      this.guestFinReceived = true;
      this.upstream?.end();
    }
    this.sendAck();
  }

  private flushed(n: number): void {
    if (this.state === "closed") return; // released all at once on close
    this.unflushedBytes -= n;
    this.hooks.budget.release(n);
  }

  /**
   * What the guest may still send: the window shrinks as the upstream socket backs up, and as
   * all flows together approach the shared budget.
   */
  private receiveWindowBytes(): number {
    const free = Math.max(0, this.tuning.receiveWindowBytes - this.unflushedBytes);
    return Math.min(free, this.hooks.budget.free, 0xffff << this.ourShift);
  }

  // ---- sending ----

  /** Sends whatever the guest's window and the link allow. */
  pump(): void {
    if (this.state !== "established") return;
    const mss = Math.min(this.guestMss, this.tuning.maxSegmentBytes);
    for (;;) {
      if (!this.hooks.linkWritable()) return;
      const inFlight = seqDiff(this.sndNxt, this.sndUna);
      const unsent = this.sendQueue.lengthBytes - inFlight;
      const room = this.guestWindowBytes - inFlight;
      if (unsent > 0 && room > 0) {
        const payload = this.sendQueue.read(inFlight, Math.min(mss, room, unsent));
        this.hooks.emit(this.segment(TCP_ACK | TCP_PSH, this.sndNxt, payload));
        this.sndNxt = seqAdd(this.sndNxt, payload.length);
        this.noteSent();
        this.armTimer();
        continue;
      }
      if (unsent === 0 && this.upstreamEnded && !this.finSent) {
        this.finSent = true;
        this.hooks.emit(this.segment(TCP_FIN | TCP_ACK, this.sndNxt));
        this.sndNxt = seqAdd(this.sndNxt, 1);
        this.noteSent();
        this.armTimer();
      }
      // Zero window with data waiting: the timer probes it (see onTimer).
      if (unsent > 0 && inFlight === 0) this.armTimer();
      return;
    }
  }

  private maybeFinish(): void {
    if (this.guestFinReceived && this.finAcked) this.close();
  }

  private segment(flags: number, seq: number, payload?: Buffer): TcpOutSegment {
    const window = this.receiveWindowBytes();
    this.lastAdvertisedBytes = window;
    return {
      srcPort: 0, // filled by the stack from the flow key
      dstPort: 0,
      seq,
      ack: this.rcvNxt,
      flags,
      window: window >>> this.ourShift,
      ...(payload ? { payload } : {}),
    };
  }

  /** Records how far sndNxt has reached (see sndMax). */
  private noteSent(): void {
    if (seqDiff(this.sndNxt, this.sndMax) > 0) this.sndMax = this.sndNxt;
  }

  private sendAck(): void {
    this.hooks.emit(this.segment(TCP_ACK, this.sndNxt));
  }

  private sendSynAck(): void {
    const s = this.segment(TCP_SYN | TCP_ACK, this.iss);
    s.window = Math.min(this.receiveWindowBytes(), 0xffff); // a SYN's window is never scaled
    s.mss = this.tuning.maxSegmentBytes;
    if (this.ourShift > 0) s.windowScale = this.ourShift;
    this.sndNxt = seqAdd(this.iss, 1);
    this.noteSent();
    this.hooks.emit(s);
  }

  // ---- timers ----

  private armTimer(): void {
    if (this.timer || this.state === "closed") return;
    this.timer = setTimeout(() => this.onTimer(), this.rtoMs);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private onTimer(): void {
    this.timer = undefined;
    if (this.state === "closed") return;
    if (++this.retransmits > this.tuning.maxRetransmits) {
      this.hooks.emit(this.segment(TCP_RST | TCP_ACK, this.sndNxt));
      this.abort();
      return;
    }
    this.rtoMs = Math.min(this.rtoMs * 2, this.tuning.maxRtoMs);
    if (this.state === "syn-received") {
      this.sendSynAck();
      this.armTimer();
      return;
    }
    const inFlight = seqDiff(this.sndNxt, this.sndUna);
    if (inFlight === 0 && this.sendQueue.lengthBytes > 0 && this.guestWindowBytes === 0) {
      // Zero-window probe: one byte past the window makes the guest restate its window.
      const probe = this.sendQueue.read(0, 1);
      this.hooks.emit(this.segment(TCP_ACK, this.sndNxt, probe));
      this.sndNxt = seqAdd(this.sndNxt, 1);
      this.noteSent();
      this.armTimer();
      return;
    }
    // Go back to the oldest unacknowledged byte and resend from there (the FIN too).
    this.sndNxt = this.sndUna;
    if (!this.finAcked) this.finSent = false;
    this.pump();
    if (seqDiff(this.sndNxt, this.sndUna) === 0 && this.sendQueue.lengthBytes > 0) this.armTimer();
  }

  // ---- teardown ----

  /** Guest reset or retransmissions exhausted: drop everything now. */
  abort(): void {
    this.upstream?.destroy();
    this.close();
  }

  private close(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.clearTimer();
    this.hooks.budget.release(this.sendQueue.lengthBytes + this.unflushedBytes);
    this.unflushedBytes = 0;
    this.sendQueue.clear();
    this.upstream?.destroy();
    this.hooks.onClosed();
  }
}
