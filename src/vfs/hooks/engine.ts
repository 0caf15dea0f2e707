/**
 * Runs compiled rules around one operation: before (static verdicts, callbacks that may veto,
 * write rewrites) and after (callbacks that observe, then the event). Before-callbacks fail
 * closed: a throw or a timeout refuses the operation with EIO. After-callbacks run detached
 * and bounded, so a slow observer never stalls the guest or grows host memory.
 */
import { Errno, VfsError } from "../errors.js";
import { errnoNumber, ruleMatches, type CompiledRule } from "./rules.js";
import type { FileEventInfo, FileOp, FileOpInfo } from "./types.js";

/** A refusal by a rule: the guest gets `errno`, the event says `blocked`. */
export class HookBlocked extends VfsError {
  constructor(errno: number, why: string) {
    super(errno, why);
    this.name = "HookBlocked";
  }
}

/** After-callbacks running at once; more are dropped (and counted). */
const MAX_PENDING_AFTER = 128;

class HookTimeout extends Error {}

async function withTimeout<T>(ms: number, work: () => T | Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      Promise.resolve().then(work),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new HookTimeout()), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function asBuffer(data: Buffer | Uint8Array | string): Buffer {
  if (typeof data === "string") return Buffer.from(data);
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** Where an operation's rules look: every op name it goes by and every path it names. */
export interface OpScope {
  readonly ops: readonly FileOp[];
  readonly paths: readonly string[];
}

export class HookEngine {
  private pendingAfter = 0;
  /** After-callbacks skipped because too many were running. */
  droppedAfter = 0;

  constructor(
    private readonly rules: readonly CompiledRule[],
    private readonly onEvent: ((event: FileEventInfo) => void) | undefined,
  ) {
    this.checksBefore = rules.some(
      (r) => r.rule.action !== undefined || r.rule.before !== undefined,
    );
  }

  get active(): boolean {
    return this.rules.length > 0 || this.onEvent !== undefined;
  }

  /** False when no rule acts before operations: callers skip `before` (and its promise). */
  readonly checksBefore: boolean;

  /**
   * Throws HookBlocked when a rule refuses; for writes, resolves to the data to write (the
   * original unless a mutate-write rule replaced it).
   */
  async before(info: FileOpInfo, scope: OpScope): Promise<Buffer | undefined> {
    let data = info.data;
    for (const rule of this.rules) {
      const { action, before, mutate } = rule.rule;
      if (before === undefined && action === undefined) continue;
      if (!ruleMatches(rule, scope.ops, scope.paths)) continue;
      if (before !== undefined) {
        const verdict = await this.callBefore(rule, () =>
          before(data === undefined ? info : { ...info, data }),
        );
        if (verdict === "block") throw new HookBlocked(Errno.EPERM, rule.label);
        if (typeof verdict === "object" && verdict !== null) {
          throw new HookBlocked(errnoNumber(verdict.block), rule.label);
        }
        if (verdict === "allow") return data;
      }
      if (action === "block") throw new HookBlocked(rule.errno, rule.label);
      if (action === "allow") return data;
      if (action === "mutate-write" && mutate !== undefined && data !== undefined) {
        const current = data;
        const replaced = await this.callBefore(rule, () => mutate({ ...info, data: current }));
        if (replaced !== undefined) data = asBuffer(replaced);
      }
    }
    return data;
  }

  private async callBefore<T>(rule: CompiledRule, work: () => T | Promise<T>): Promise<T> {
    try {
      return await withTimeout(rule.timeoutMs, work);
    } catch (err) {
      const why = err instanceof HookTimeout ? "timed out" : "threw";
      throw new HookBlocked(Errno.EIO, `${rule.label}: hook ${why}`);
    }
  }

  /** Reports a finished (or refused) operation: after-callbacks, then the event. */
  after(event: FileEventInfo, scope: OpScope): void {
    for (const rule of this.rules) {
      const after = rule.rule.after;
      if (after === undefined || !ruleMatches(rule, scope.ops, scope.paths)) continue;
      if (this.pendingAfter >= MAX_PENDING_AFTER) {
        this.droppedAfter++;
        continue;
      }
      this.pendingAfter++;
      void withTimeout(rule.timeoutMs, () => after(event))
        .catch(() => undefined)
        .finally(() => this.pendingAfter--);
    }
    this.onEvent?.(event);
  }
}
