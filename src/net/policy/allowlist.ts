import { compileHostPattern, type HostPattern } from "./host-pattern.js";

export interface HostAllowlistOptions {
  /**
   * What an empty list means. Reference semantics (matchlock): every host is allowed. `true`
   * starts with everything denied, so hosts must be added before anything is reachable.
   */
  denyWhenEmpty?: boolean;
}

/**
 * The user's host allowlist; entries can be added and removed while a sandbox runs and take
 * effect for the next connection. `host` arguments must already be canonical (canonicalHost).
 */
export class HostAllowlist {
  private patterns: HostPattern[] = [];
  /** Entries added by live approval ("sandbox"), not written by anyone. */
  private readonly approved = new Set<HostPattern>();
  private denyWhenEmpty: boolean;
  private readonly listeners: (() => void)[] = [];

  constructor(entries: readonly string[] = [], opts: HostAllowlistOptions = {}) {
    this.denyWhenEmpty = opts.denyWhenEmpty ?? false;
    this.add(entries);
  }

  /** What an empty list means now: true = every host denied. */
  get emptyDeniesAll(): boolean {
    return this.denyWhenEmpty;
  }

  /** Entries as given, in order, without duplicates. */
  get entries(): string[] {
    return this.patterns.map((p) => p.text);
  }

  /** The entries a live approval added (a subset of `entries`, in order). */
  get approvedEntries(): string[] {
    return this.patterns.filter((p) => this.approved.has(p)).map((p) => p.text);
  }

  /** Called after every change that changed something. */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /**
   * Compiles every entry first, so one bad entry leaves the list unchanged. `approved`: the
   * entries come from a live approval (see `namesByEntry`); an entry someone adds by hand
   * later loses that mark.
   */
  add(entries: readonly string[], opts: { approved?: boolean } = {}): void {
    const compiled = entries.map(compileHostPattern);
    const before = this.patterns.length;
    let marked = false;
    for (const p of compiled) {
      const same = this.patterns.find((q) => q.text.toLowerCase() === p.text.toLowerCase());
      if (same) {
        if (!opts.approved && this.approved.delete(same)) marked = true;
        continue;
      }
      this.patterns.push(p);
      if (opts.approved) this.approved.add(p);
    }
    if (this.patterns.length !== before || marked) this.changed();
  }

  /**
   * Whether an entry written by someone (at creation or by `allow-list add`, not by a live
   * approval) names `host`, on any port: what lets a name reach a link-local address.
   */
  namesByEntry(host: string): boolean {
    if (this.patterns.length === 0) return !this.denyWhenEmpty;
    return this.patterns.some((p) => !this.approved.has(p) && p.matches(host, p.port ?? 1));
  }

  /**
   * Removing the last entry of a list that restricted hosts leaves it denying everything:
   * a delete must never widen access (the reference's "empty means all" applies only to a
   * list that was empty from the start).
   */
  remove(entries: readonly string[]): void {
    const gone = new Set(entries.map((e) => e.trim().toLowerCase()));
    const before = this.patterns.length;
    this.patterns = this.patterns.filter((p) => !gone.has(p.text.toLowerCase()));
    for (const p of this.approved) if (!this.patterns.includes(p)) this.approved.delete(p);
    if (before > 0 && this.patterns.length === 0) this.denyWhenEmpty = true;
    if (this.patterns.length !== before) this.changed();
  }

  private changed(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch {
        // A listener's failure is its own; the list has changed either way.
      }
    }
  }

  allows(host: string, port: number): boolean {
    if (this.patterns.length === 0) return !this.denyWhenEmpty;
    return this.patterns.some((p) => p.matches(host, port));
  }
}
