/**
 * The host's side of the FUSE relay's directory cache (guest/fuse_dircache.c; the wire format
 * is in docs/PROTOCOL.md, "Directory listings held by the FUSE relay"). The relay answers a
 * LOOKUP itself in a directory whose complete listing it holds: an empty one pushed after a
 * guest MKDIR, or a whole one it asked for (LIST_DIR) on a miss. The host remembers which
 * directories the relay may hold (`held`, a superset of what the relay holds: a directory
 * leaves it only when the host sends DROP or the relay says it let go) and keeps those
 * listings current: every guest request that adds or removes a name there pushes ADD or
 * REMOVE ahead of its reply. Host-side changes reach the relay as the kernel's invalidations,
 * which it applies to its listings first. Every entry in a listing carries a node id counted
 * as one lookup in the InodeTable; the relay hands that lookup to the kernel or FORGETs it.
 *
 * Bounded against a hostile guest: at most MAX_HELD directories, MAX_IN_FLIGHT listings being
 * made at once, MAX_LISTING_ENTRIES names and MAX_LISTING_BYTES bytes per listing (a larger
 * directory gets DROP), and nothing it asks for creates a node id a LOOKUP could not.
 */
import { RelayCode } from "./fuse-constants.js";
import { Errno, toErrno } from "./errors.js";
import { ENTRY_OUT_BYTES, entryOut, relayMessage, type CacheTimeouts } from "./fuse-reply.js";
import { childPath } from "./names.js";
import type { InodeTable } from "./inode-table.js";
import type { VfsProvider } from "./provider.js";
import { statSignature } from "./stat-signature.js";

/** What a listing needs of the server's OpsContext (that interface holds a RelayListings). */
export interface ListingContext {
  readonly provider: VfsProvider;
  readonly inodes: InodeTable;
  readonly timeouts: (path: string) => CacheTimeouts;
  readonly pushes: Buffer[];
}

export const MAX_LISTING_ENTRIES = 4096;
export const MAX_LISTING_BYTES = 512 * 1024;
export const MAX_HELD = 4096;
const MAX_IN_FLIGHT = 8;
/** Stats of one listing issued together. */
const STAT_BATCH = 32;
/** LISTING / DROP flag: this answers the relay's LIST_DIR. */
export const LISTING_REPLY = 1;
/** DROP flag: refused only because the host is busy with other listings (ask again soon). */
export const DROP_BUSY = 2;
const LISTING_HEAD_BYTES = 32;
const RECORD_HEAD_BYTES = 8;
const NAME_MAX_BYTES = 255;

function validity(ms: number): [bigint, number] {
  const safe = Number.isFinite(ms) && ms > 0 ? ms : 0;
  const seconds = Math.floor(safe / 1000);
  return [BigInt(seconds), Math.floor((safe - seconds * 1000) * 1e6)];
}

/** DIR_DROP: the relay must not (or no longer) answer from a listing of `dir`; 0 is every one. */
export function dropMessage(dir: bigint, reply: boolean, busy = false, seq = 0): Buffer {
  const body = Buffer.alloc(16);
  body.writeBigUInt64LE(dir, 0);
  body.writeUInt32LE((reply ? LISTING_REPLY : 0) | (busy ? DROP_BUSY : 0), 8);
  body.writeUInt32LE(seq >>> 0, 12); // a reply's: the LIST_DIR's number
  return relayMessage(RelayCode.DIR_DROP, body);
}

/** DIR_ADD / DIR_REMOVE of `name` in `dir`; `node` (0: none) is the node whose links changed. */
export function nameMessage(code: number, dir: bigint, name: string, node: bigint): Buffer {
  const nameBytes = Buffer.from(name);
  const body = Buffer.alloc(24 + nameBytes.length);
  body.writeBigUInt64LE(dir, 0);
  body.writeUInt32LE(nameBytes.length, 8);
  body.writeBigUInt64LE(node, 16);
  nameBytes.copy(body, 24);
  return relayMessage(code, body);
}

/** One name of a listing, with the entry the relay may hand to the kernel (or none). */
function record(name: string, entry: Buffer | undefined): Buffer {
  const nameBytes = Buffer.from(name);
  const entryBytes = entry === undefined ? 0 : ENTRY_OUT_BYTES;
  const buf = Buffer.alloc(recordBytes(nameBytes.length, entry !== undefined));
  buf.writeUInt32LE(nameBytes.length, 0);
  buf.writeUInt32LE(entry === undefined ? 0 : 1, 4);
  entry?.copy(buf, RECORD_HEAD_BYTES);
  nameBytes.copy(buf, RECORD_HEAD_BYTES + entryBytes);
  return buf;
}

function recordBytes(nameBytes: number, withEntry: boolean): number {
  return RECORD_HEAD_BYTES + (withEntry ? ENTRY_OUT_BYTES : 0) + ((nameBytes + 7) & ~7);
}

/** DIR_LISTING: every name in `dir`; names not listed are absent for `negativeMs`. */
export function listingMessage(
  dir: bigint,
  reply: boolean,
  negativeMs: number,
  records: readonly Buffer[],
  seq = 0,
): Buffer {
  const head = Buffer.alloc(LISTING_HEAD_BYTES);
  const [sec, nsec] = validity(negativeMs);
  head.writeBigUInt64LE(dir, 0);
  head.writeUInt32LE(reply ? LISTING_REPLY : 0, 8);
  head.writeUInt32LE(records.length, 12);
  head.writeBigUInt64LE(sec, 16);
  head.writeUInt32LE(nsec, 24);
  head.writeUInt32LE(seq >>> 0, 28); // a reply's: the LIST_DIR's number
  return relayMessage(RelayCode.DIR_LISTING, Buffer.concat([head, ...records]));
}

/** The timeouts for names in directory `path` (the watcher covers a directory's names). */
function namesTimeouts(ctx: ListingContext, path: string): CacheTimeouts {
  return ctx.timeouts(childPath(path, "x"));
}

export class RelayListings {
  /** Directories the relay may hold a listing of: pushes go to these. */
  private readonly held = new Set<bigint>();
  /** Listings being made, by directory. */
  private readonly listing = new Map<bigint, number>();
  private inFlight = 0;

  /**
   * `enabled` false (a provider with file hooks: each stat must reach them) answers every
   * LIST_DIR with DROP and pushes nothing.
   */
  constructor(readonly enabled: boolean) {}

  /** Directories the relay may hold (for tests and leak checks). */
  get size(): number {
    return this.held.size;
  }

  /** Where a copy of the guest (fork, checkpoint) must go on pushing: the relay is in it. */
  exportState(): string[] {
    return [...this.held].map((id) => id.toString());
  }

  importState(ids: readonly string[] | undefined): void {
    for (const id of (ids ?? []).slice(0, MAX_HELD))
      if (/^\d{1,20}$/.test(id)) this.held.add(BigInt(id));
  }

  /**
   * The relay's LIST_DIR (unique 0): op 0 asks for a listing (`seq` is echoed in the answer),
   * 1 says it let one go.
   */
  async request(
    ctx: ListingContext,
    dir: bigint,
    op: number,
    seq: number,
  ): Promise<Buffer | undefined> {
    if (op === 1) {
      if (!this.listing.has(dir)) this.held.delete(dir);
      return undefined;
    }
    if (op !== 0) return undefined;
    return this.list(ctx, dir, seq);
  }

  /** The name was added in `parent` (CREATE, MKNOD, SYMLINK, LINK, a rename's target). */
  added(ctx: ListingContext, parent: bigint, name: string, node = 0n): void {
    if (this.held.has(parent)) ctx.pushes.push(nameMessage(RelayCode.DIR_ADD, parent, name, node));
  }

  /** The name is gone from `parent` (UNLINK, a rename's source); `node` was its node. */
  removed(ctx: ListingContext, parent: bigint, name: string, node = 0n): void {
    if (this.held.has(parent))
      ctx.pushes.push(nameMessage(RelayCode.DIR_REMOVE, parent, name, node));
  }

  /** RMDIR: the name goes, and so does any listing of the directory itself. */
  removedDir(ctx: ListingContext, parent: bigint, name: string, node: bigint | undefined): void {
    this.removed(ctx, parent, name, node ?? 0n);
    if (node !== undefined && this.held.delete(node)) ctx.pushes.push(dropMessage(node, false));
  }

  /**
   * MKDIR made `node` (named `name` in `parent`): its listing is empty, so the relay can
   * answer every LOOKUP in it (an untar's new names) until something is created there.
   * `timeouts` were asked before the mkdir (a new directory is not watched yet: the default
   * timeout, as for the kernel's negative entries). Call right after the node was remembered,
   * with no await before the reply is written: a notification about the new directory can
   * then only follow this listing on the stream (and drop it in the relay).
   */
  madeDir(
    ctx: ListingContext,
    parent: bigint,
    name: string,
    node: bigint,
    timeouts: CacheTimeouts,
  ): void {
    this.added(ctx, parent, name, node);
    if (!this.enabled || timeouts.entryMs <= 0 || this.held.size >= MAX_HELD) return;
    if (this.held.has(node)) return;
    this.held.add(node);
    ctx.pushes.push(listingMessage(node, false, timeouts.entryMs, []));
  }

  /**
   * A host-side change replaced or removed what `dir`'s name led to (an invalidation of the
   * whole name, not just its attributes): the DROP for the relay, when it may hold a listing.
   */
  replaced(dir: bigint): Buffer | undefined {
    return this.held.delete(dir) ? dropMessage(dir, false) : undefined;
  }

  /** A refusal; the directory stays held while another listing of it is being made. */
  private drop(dir: bigint, seq: number): Buffer {
    if ((this.listing.get(dir) ?? 0) <= 1) this.held.delete(dir);
    return dropMessage(dir, true, false, seq);
  }

  /**
   * The whole listing of `dir`, each name with a counted entry, or DROP when it is not a
   * directory, unknown, too large or anything fails. `dir` counts as held from the start, so
   * a guest change made while the listing is read is pushed and the relay throws the listing
   * away (it arrives after the push).
   */
  private async list(ctx: ListingContext, dir: bigint, seq: number): Promise<Buffer> {
    if (!this.enabled) return dropMessage(dir, true, false, seq);
    if (this.inFlight >= MAX_IN_FLIGHT) return dropMessage(dir, true, true, seq);
    if (!this.held.has(dir) && this.held.size >= MAX_HELD)
      return dropMessage(dir, true, false, seq);
    if (!ctx.inodes.linked(dir)) return dropMessage(dir, true, false, seq);
    const path = ctx.inodes.path(dir);
    this.held.add(dir);
    this.inFlight++;
    this.listing.set(dir, (this.listing.get(dir) ?? 0) + 1);
    const counted: bigint[] = [];
    try {
      const negative = namesTimeouts(ctx, path);
      if (negative.entryMs <= 0) return this.drop(dir, seq);
      const names = (await ctx.provider.readdir(path)).map((e) => e.name);
      let bytes = LISTING_HEAD_BYTES;
      for (const name of names) bytes += recordBytes(Buffer.byteLength(name), true);
      const tooLong = names.some((n) => Buffer.byteLength(n) > NAME_MAX_BYTES);
      if (names.length > MAX_LISTING_ENTRIES || bytes > MAX_LISTING_BYTES || tooLong)
        return this.drop(dir, seq);
      const records: Buffer[] = [];
      let negativeMs = negative.entryMs;
      for (let at = 0; at < names.length; at += STAT_BATCH) {
        const batch = names.slice(at, at + STAT_BATCH);
        const timeouts = batch.map((name) => ctx.timeouts(childPath(path, name)));
        const stats = await Promise.allSettled(
          batch.map((name) => ctx.provider.stat(childPath(path, name))),
        );
        // The directory was renamed or removed meanwhile: the names may be another's.
        if (!ctx.inodes.linked(dir) || ctx.inodes.path(dir) !== path) return this.drop(dir, seq);
        stats.forEach((result, i) => {
          const name = batch[i]!;
          const t = timeouts[i]!;
          if (result.status === "rejected") {
            // Gone since the readdir: not listed (absent); any other failure: listed, so
            // the relay sends its LOOKUP on and the host answers as it would have.
            if (toErrno(result.reason) !== Errno.ENOENT) records.push(record(name, undefined));
            return;
          }
          const stat = result.value;
          if (t.entryMs <= 0) {
            records.push(record(name, undefined));
            return;
          }
          negativeMs = Math.min(negativeMs, t.entryMs);
          const fileId = stat.type === "dir" ? undefined : stat.fileId;
          const nodeid = ctx.inodes.remember(dir, name, fileId);
          counted.push(nodeid);
          ctx.inodes.told(nodeid, statSignature(stat));
          records.push(record(name, entryOut(nodeid, stat, t)));
        });
      }
      counted.length = 0;
      return listingMessage(dir, true, negativeMs, records, seq);
    } catch {
      return this.drop(dir, seq);
    } finally {
      // A listing not sent hands back the lookups it counted.
      for (const id of counted) ctx.inodes.forget(id, 1n);
      this.inFlight--;
      const left = (this.listing.get(dir) ?? 1) - 1;
      if (left > 0) this.listing.set(dir, left);
      else this.listing.delete(dir);
    }
  }
}
