import { finished, pipeline, type Readable, type Writable } from "node:stream";

/**
 * Size of each of the two buffers a response body is gathered in on its way to a guest TLS
 * connection: at most this much is written per turn, and at most twice this is held per
 * response (docs/PERFORMANCE.md, "Intercepted HTTPS, session 12").
 */
export const RELAY_SLAB_BYTES = 1024 * 1024;

/**
 * What the relay buffers of all of one sandbox's flows may hold together. Without it a guest
 * that opens its 1,024 flows and reads none of them holds two full buffers each here (2 GiB).
 */
export const RELAY_BUDGET_BYTES = 64 * 1024 * 1024;

/**
 * The smallest buffer a flow gets when the budget is spent: outside the budget, so that a flow
 * the guest does read always moves (were it to wait for buffers held by flows the guest does
 * not read, the guest would wait for it: a deadlock). At most two per flow.
 */
export const RELAY_FLOOR_BYTES = 16 * 1024;

/**
 * The relay buffers of one sandbox's flows (one per InterceptUpstream). A body takes two
 * buffers when its first bytes arrive and gives them back when it is through or fails: full
 * size while the budget lasts, then what is left of it, and never less than the floor. So all
 * flows together hold at most the limit plus two floors per flow.
 */
export class RelayBudget {
  private used = 0;

  constructor(readonly limit: number = RELAY_BUDGET_BYTES) {}

  /** Bytes held now by all flows' buffers. */
  get inUse(): number {
    return this.used;
  }

  /** The size of each of the two buffers a body wanting `want` per buffer gets; reserved. */
  reserve(want: number): number {
    const left = Math.max(0, Math.floor((this.limit - this.used) / 2));
    const each = Math.max(Math.min(want, left), Math.min(want, RELAY_FLOOR_BYTES));
    this.used += 2 * each;
    return each;
  }

  /** Gives back what `reserve` returned. */
  release(each: number): void {
    this.used -= 2 * each;
  }
}

export interface BodyRelay {
  /** Counts the body bytes taken from the source. */
  onBytes(n: number): void;
  /** Runs at most once, when either side fails or closes before the body is through. */
  onFailed(): void;
  /** The sandbox's budget for relay buffers; without one, this body's buffers are its own. */
  budget?: RelayBudget;
}

/**
 * Streams a response body into `res` with backpressure. `copiedOnWrite` says the destination
 * is done with a written buffer once its write completes (TLS: encrypted into buffers of its
 * own): then the body is gathered into two reused buffers, each write carrying what arrived
 * while the previous one was in flight. Node's HTTP client hands over one fresh Buffer per
 * 16 KiB TLS record; queued as they are, they live until the guest's TLS write of the turn
 * completes, and were copied once more to be joined into that write. Gathered, each dies in
 * the turn it arrived and the join goes: less garbage collection, one copy fewer.
 * Otherwise (the plain guest stream, whose stack keeps written buffers until the guest
 * acknowledges them) the source is piped as it is.
 */
export function relayBody(
  source: Readable,
  res: Writable,
  copiedOnWrite: boolean,
  sizeHint: number | undefined,
  relay: BodyRelay,
): void {
  if (copiedOnWrite) {
    const budget = relay.budget ?? new RelayBudget(Number.MAX_SAFE_INTEGER);
    return new SlabRelay(source, res, slabBytes(sizeHint), budget, relay).start();
  }
  source.on("data", (c: Buffer) => relay.onBytes(c.length));
  pipeline(source, res, (err) => {
    if (err) relay.onFailed();
  });
}

/** A body known to be short gets buffers of its size. */
function slabBytes(sizeHint: number | undefined): number {
  if (sizeHint === undefined || !Number.isSafeInteger(sizeHint) || sizeHint < 1)
    return RELAY_SLAB_BYTES;
  return Math.min(sizeHint, RELAY_SLAB_BYTES);
}

class SlabRelay {
  /** Allocated on first use: a body-less response takes none. */
  private readonly slabs: [Buffer | undefined, Buffer | undefined] = [undefined, undefined];
  private filling: 0 | 1 = 0;
  private filled = 0;
  private writing = false;
  private ended = false;
  private closed = false;
  private failed = false;
  /** The part of a chunk that did not fit; the source stays paused while there is one. */
  private rest: Buffer | undefined;
  private pausedHere = false;
  /** Each buffer's size, reserved from the budget with the first bytes (0: none yet). */
  private size = 0;
  private released = false;

  constructor(
    private readonly source: Readable,
    private readonly res: Writable,
    private readonly want: number,
    private readonly budget: RelayBudget,
    private readonly relay: BodyRelay,
  ) {}

  start(): void {
    this.source.on("data", (chunk: Buffer) => this.take(chunk));
    finished(this.source, (err) => (err ? this.fail() : this.sourceEnded()));
    finished(this.res, (err) => {
      if (err) this.fail();
      this.release();
    });
  }

  private take(chunk: Buffer): void {
    if (this.failed || this.released) return;
    if (this.size === 0) this.size = this.budget.reserve(this.want);
    this.relay.onBytes(chunk.length);
    this.rest = this.copyIn(chunk);
    this.holdIfFull();
    this.flush();
  }

  private sourceEnded(): void {
    this.ended = true;
    this.flush();
  }

  /** Copies what fits into the buffer being filled; returns what did not. */
  private copyIn(chunk: Buffer): Buffer | undefined {
    const slab = (this.slabs[this.filling] ??= Buffer.allocUnsafeSlow(this.size));
    const n = Math.min(chunk.length, slab.length - this.filled);
    chunk.copy(slab, this.filled, 0, n);
    this.filled += n;
    return n < chunk.length ? chunk.subarray(n) : undefined;
  }

  private holdIfFull(): void {
    const full = this.rest !== undefined || this.filled === this.size;
    if (full && !this.pausedHere) {
      this.pausedHere = true;
      this.source.pause();
    } else if (!full && this.pausedHere) {
      this.pausedHere = false;
      this.source.resume();
    }
  }

  /** Writes what has gathered, unless a write is in flight (then its completion will). */
  private flush(): void {
    if (this.writing || this.failed) return;
    if (this.filled === 0) {
      if (this.ended && !this.closed) {
        this.closed = true;
        this.res.end();
      }
      return;
    }
    const slice = (this.slabs[this.filling] as Buffer).subarray(0, this.filled);
    // The other buffer's write has completed (one write at a time): it is free to refill.
    this.filling = this.filling === 0 ? 1 : 0;
    this.filled = 0;
    this.writing = true;
    this.res.write(slice, (err) => {
      this.writing = false;
      if (err) return this.fail();
      this.flush();
    });
    if (this.rest) this.rest = this.copyIn(this.rest);
    this.holdIfFull();
  }

  private fail(): void {
    if (this.failed) return;
    this.failed = true;
    this.release();
    this.relay.onFailed();
  }

  /** The buffers go back to the budget (a write in flight keeps its own until it completes). */
  private release(): void {
    if (this.released) return;
    this.released = true;
    this.slabs[0] = this.slabs[1] = undefined;
    if (this.size > 0) this.budget.release(this.size);
  }
}
