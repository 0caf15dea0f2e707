import type { GuestOrigin } from "./contract.js";

/**
 * The answer to "who opened this guest flow", asked when the flow starts. The proxy holds
 * everything it sends the guest until the answer is in: the asking is done by looking at the
 * guest's sockets, and a process that got its response could close its socket and exit before
 * it was found. The question is usually answered long before (a TLS handshake takes longer),
 * so the hold costs nothing then; the asker bounds it otherwise. An answer the asker already
 * had (a stamped SYN) is known from the start: nothing waits for it, not even a turn.
 */
export class FlowOrigin {
  private answer: GuestOrigin | undefined;
  private known = false;
  private waiters: (() => void)[] = [];

  constructor(pending: GuestOrigin | undefined | Promise<GuestOrigin | undefined>) {
    const settle = (value: GuestOrigin | undefined): void => {
      this.answer = value;
      this.known = true;
      for (const wake of this.waiters.splice(0)) wake();
    };
    if (pending instanceof Promise) pending.then(settle, () => settle(undefined));
    else settle(pending);
  }

  /** Undefined until known, and when it could not be told. */
  get origin(): GuestOrigin | undefined {
    return this.answer;
  }

  /** Runs `fn` once the answer is in: at once (synchronously) when it is already. */
  whenKnown(fn: () => void): void {
    if (this.known) fn();
    else this.waiters.push(fn);
  }

  wait(): Promise<GuestOrigin | undefined> {
    return new Promise((resolve) => this.whenKnown(() => resolve(this.answer)));
  }
}

/** `fn` now, or once `origin` is known (no origin to wait for: now). */
export function afterOrigin(origin: FlowOrigin | undefined, fn: () => void): void {
  if (origin) origin.whenKnown(fn);
  else fn();
}
