/**
 * Bytes the stack holds for all flows of one guest together (data waiting for the guest's
 * acknowledgement, data written upstream and not yet flushed). Per-flow limits alone would let
 * a guest multiply them by opening many flows.
 */
export class ByteBudget {
  private usedBytes = 0;
  private wasExhausted = false;

  constructor(
    readonly limitBytes: number,
    /** Called when usage falls back below 3/4 of the limit after having reached it. */
    private readonly onFreed: () => void = () => undefined,
  ) {}

  get used(): number {
    return this.usedBytes;
  }

  get free(): number {
    return Math.max(0, this.limitBytes - this.usedBytes);
  }

  get exhausted(): boolean {
    return this.usedBytes >= this.limitBytes;
  }

  take(n: number): void {
    this.usedBytes += n;
    if (this.exhausted) this.wasExhausted = true;
  }

  release(n: number): void {
    this.usedBytes = Math.max(0, this.usedBytes - n);
    if (this.wasExhausted && this.usedBytes < (this.limitBytes * 3) / 4) {
      this.wasExhausted = false;
      this.onFreed();
    }
  }
}
