/**
 * Holds the guest's output while an `--approve` question is open, so nothing the guest prints
 * can wipe, cover or imitate the question a person is answering. Bounded with backpressure:
 * a held write does not complete, so each forwarding stream keeps at most its high-water mark
 * and the guest's own output is paused (the exec stream's flow control) rather than buffered
 * here without end. Everything held goes out, in order, once the question is answered.
 */
export class OutputHold {
  private holding = false;
  private readonly waiting: Array<() => void> = [];

  /** From now on writes wait (a question is about to be shown). */
  hold(): void {
    this.holding = true;
  }

  /** Lets every waiting write go, oldest first. */
  release(): void {
    this.holding = false;
    // A write that opens a question again stops the rest where they are.
    for (
      let write = this.waiting.shift();
      write;
      write = this.holding ? undefined : this.waiting.shift()
    )
      write();
  }

  /** Runs `write` now, or when the hold is released. */
  pass(write: () => void): void {
    if (this.holding) this.waiting.push(write);
    else write();
  }
}
