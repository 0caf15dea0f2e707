/** A seeded PRNG (mulberry32) with the draws the fuzzer needs: every run replays from its seed. */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("pick from an empty list");
    return items[this.int(items.length)] as T;
  }

  /** Small sizes much more often than large ones (most bugs need a few bytes, not many). */
  size(max: number): number {
    const bits = this.int(Math.max(1, Math.ceil(Math.log2(max + 1))) + 1);
    return Math.min(max, this.int(2 ** bits));
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

/** FNV-1a over the bytes: a stable per-input seed (chunk splits replay exactly). */
export function hashBytes(input: Buffer): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < input.length; i++) h = Math.imul(h ^ (input[i] as number), 0x01000193);
  return h >>> 0;
}

/** Splits `input` into chunks the way a socket might deliver it, the same way every time. */
export function chunked(input: Buffer, maxChunk = 4096): Buffer[] {
  const r = new Random(hashBytes(input));
  // Byte by byte now and then: per-chunk work that grows with what is buffered (re-parsing
  // from the start, concatenating) only shows with many small chunks.
  if (r.chance(0.05))
    return Array.from({ length: input.length }, (_, i) => input.subarray(i, i + 1));
  const out: Buffer[] = [];
  const whole = r.chance(0.3);
  for (let at = 0; at < input.length;) {
    const n = whole ? input.length : 1 + r.size(r.chance(0.5) ? 16 : maxChunk);
    out.push(input.subarray(at, at + n));
    at += n;
  }
  return out;
}
