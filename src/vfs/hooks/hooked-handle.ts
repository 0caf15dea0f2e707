/**
 * An open file under hooks. Reads and writes are checked one request at a time (a rule can
 * refuse or rewrite any single write), but reported once per handle: the totals go out as one
 * `read` and one `write` event when the handle is synced or closed. A 1 GiB copy is about a
 * thousand 1 MiB requests; one event per request would flood every listener and say nothing
 * more than the totals do.
 */
import type { VfsHandle, VfsStat } from "../provider.js";
import type { HookEngine } from "./engine.js";
import type { FileEventInfo, FileOpInfo } from "./types.js";
import { eventOf, failedEvent } from "./event-of.js";

interface Totals {
  bytes: number;
  count: number;
}

export class HookedHandle implements VfsHandle {
  private readonly reads: Totals = { bytes: 0, count: 0 };
  private readonly writes: Totals = { bytes: 0, count: 0 };
  readonly spaceLimited: boolean;

  constructor(
    private readonly inner: VfsHandle,
    private readonly engine: HookEngine,
    /** The path and caller at open time (the file may be renamed or unlinked since). */
    private readonly base: FileOpInfo,
  ) {
    this.spaceLimited = inner.spaceLimited === true;
  }

  async read(offset: number, lengthBytes: number): Promise<Buffer> {
    const info: FileOpInfo = {
      ...this.base,
      op: "read",
      offset,
      size: lengthBytes,
      mode: undefined,
    };
    const scope = { ops: ["read" as const], paths: [info.path] };
    try {
      if (this.engine.checksBefore) await this.engine.before(info, scope);
      const data = await this.inner.read(offset, lengthBytes);
      this.reads.bytes += data.length;
      this.reads.count++;
      return data;
    } catch (err) {
      this.engine.after(failedEvent(info, err), scope);
      throw err;
    }
  }

  async write(offset: number, data: Buffer): Promise<number> {
    const info: FileOpInfo = {
      ...this.base,
      op: "write",
      offset,
      size: data.length,
      mode: undefined,
      data,
    };
    const scope = { ops: ["write" as const], paths: [info.path] };
    try {
      const toWrite = this.engine.checksBefore
        ? ((await this.engine.before(info, scope)) ?? data)
        : data;
      const written = await this.inner.write(offset, toWrite);
      this.writes.bytes += written;
      this.writes.count++;
      // A rewritten write that went through whole counts as the guest's whole write, so the
      // guest kernel neither retries nor reports a short write.
      return toWrite === data ? written : written === toWrite.length ? data.length : 0;
    } catch (err) {
      this.engine.after(failedEvent({ ...info, data: undefined }, err), scope);
      throw err;
    }
  }

  stat(): Promise<VfsStat> {
    return this.inner.stat();
  }

  async truncate(sizeBytes: number): Promise<void> {
    const info: FileOpInfo = { ...this.base, op: "truncate", size: sizeBytes, mode: undefined };
    const scope = { ops: ["truncate" as const, "setattr" as const], paths: [info.path] };
    try {
      await this.engine.before(info, scope);
      await this.inner.truncate(sizeBytes);
    } catch (err) {
      this.engine.after(failedEvent(info, err), scope);
      throw err;
    }
    this.engine.after(eventOf(info, 0), scope);
  }

  async sync(): Promise<void> {
    await this.inner.sync();
    this.report();
  }

  async close(): Promise<void> {
    try {
      await this.inner.close();
    } finally {
      this.report();
    }
  }

  /** Sends the totals since the last report, if any. */
  private report(): void {
    for (const [op, totals] of [
      ["read", this.reads],
      ["write", this.writes],
    ] as const) {
      if (totals.count === 0) continue;
      const event: FileEventInfo = {
        ...eventOf({ ...this.base, op, mode: undefined }, 0),
        size: totals.bytes,
        count: totals.count,
      };
      totals.bytes = 0;
      totals.count = 0;
      this.engine.after(event, { ops: [op], paths: [event.path] });
    }
  }
}
