/**
 * Splits the client's byte stream into lines (on `\n` bytes, so a multi-byte character is
 * never cut), with a bound on one line. The reference's scanner dies on a line over 10 MiB and
 * takes the whole session with it; here a line over `maxLineBytes` is skipped — only its first
 * and last few KiB are kept, so its id can still be answered — and reading goes on.
 */
import type { Readable } from "node:stream";

/** How much of an oversized line is kept at each end (for its id). */
const KEEP_BYTES = 4096;
const NEWLINE = 0x0a;
const CR = 0x0d;

export interface LineReaderEvents {
  /** One line without its `\n` (and without a trailing `\r`). Never empty. */
  line(bytes: Buffer): void;
  /** A line longer than the bound: its first and last bytes, and its full length. */
  oversized(head: Buffer, tail: Buffer, sizeBytes: number): void;
  /** End of input (EOF or a read error), after every line before it. */
  end(): void;
}

export class LineReader {
  private parts: Buffer[] = [];
  private partBytes = 0;
  /** Set while skipping an oversized line. */
  private skipping: { head: Buffer; tail: Buffer; sizeBytes: number } | undefined;
  /** Input read but not split yet (held while paused). */
  private pending: Buffer | undefined;
  private readonly pausedBy = new Set<string>();
  private ended = false;
  private endDelivered = false;

  constructor(
    private readonly source: Readable,
    private readonly maxLineBytes: number,
    private readonly events: LineReaderEvents,
  ) {
    source.on("data", (chunk: Buffer) => {
      this.pending = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
      this.drain();
    });
    const finish = (): void => {
      this.ended = true;
      this.drain();
    };
    source.once("end", finish);
    source.once("error", finish);
    source.once("close", finish);
  }

  /** Stops delivering lines until every `reason` given here is resumed (back-pressure). */
  pause(reason: string): void {
    this.pausedBy.add(reason);
    this.source.pause();
  }

  resume(reason: string): void {
    if (!this.pausedBy.delete(reason) || this.pausedBy.size > 0) return;
    this.drain();
    if (this.pausedBy.size === 0) this.source.resume();
  }

  get paused(): boolean {
    return this.pausedBy.size > 0;
  }

  private drain(): void {
    while (this.pending !== undefined && this.pausedBy.size === 0) {
      const buf = this.pending;
      const nl = buf.indexOf(NEWLINE);
      if (nl < 0) {
        this.pending = undefined;
        this.append(buf);
        break;
      }
      this.pending = nl + 1 < buf.length ? buf.subarray(nl + 1) : undefined;
      this.append(buf.subarray(0, nl));
      this.finishLine();
    }
    if (this.ended && this.pending === undefined && !this.endDelivered) {
      if (this.pausedBy.size > 0) return;
      // Like the reference's scanner, a last line without its newline still counts.
      this.finishLine();
      this.endDelivered = true;
      this.events.end();
    }
  }

  private append(bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (this.skipping) {
      const s = this.skipping;
      s.sizeBytes += bytes.length;
      s.tail = lastBytes(Buffer.concat([s.tail, bytes]), KEEP_BYTES);
      return;
    }
    this.parts.push(bytes);
    this.partBytes += bytes.length;
    if (this.partBytes > this.maxLineBytes) {
      const all = Buffer.concat(this.parts);
      this.skipping = {
        head: Buffer.from(all.subarray(0, KEEP_BYTES)),
        tail: Buffer.from(lastBytes(all, KEEP_BYTES)),
        sizeBytes: all.length,
      };
      this.parts = [];
      this.partBytes = 0;
    }
  }

  private finishLine(): void {
    if (this.skipping) {
      const { head, tail, sizeBytes } = this.skipping;
      this.skipping = undefined;
      this.events.oversized(head, tail, sizeBytes);
      return;
    }
    if (this.partBytes === 0) return;
    let line = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts);
    this.parts = [];
    this.partBytes = 0;
    if (line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
    if (line.length > 0) this.events.line(line);
  }
}

function lastBytes(buf: Buffer, n: number): Buffer {
  return buf.length > n ? buf.subarray(buf.length - n) : buf;
}
