/**
 * Cache invalidation: unsolicited messages (unique 0, error = notify code) that tell the guest
 * kernel to drop what it cached about a name or a node when the host side changed it. Changed
 * paths are collected for a few milliseconds and sent together, de-duplicated and
 * bounded: past the bound, or while the guest is not reading, they are dropped and the cache
 * timeouts alone bound how stale the guest's view can get. The guest agent drops them too when
 * its queue is full, and says so (NOTIFY_LOST_OPCODE): either way `reliable` turns false.
 */
import type { Duplex } from "node:stream";
import { NotifyCode, OUT_HEADER_BYTES } from "./fuse-constants.js";
import type { InodeTable } from "./inode-table.js";
import { fuseRequestStats } from "./request-stats.js";
import { statSignature, type HostProbe } from "./stat-signature.js";

/**
 * Changes are collected this long before they are checked and sent: the watcher reports the
 * guest's own operations while their replies are still being made, and a little later the
 * probe sees them as already known (see Invalidator.changed) instead of invalidating the
 * name the guest is creating.
 */
export const FLUSH_DELAY_MS = 10;
/** Paths held for the next flush; more are dropped. */
const MAX_PENDING_PATHS = 4096;
/** Bytes the stream may hold unsent before notifications are skipped. */
const MAX_UNSENT_BYTES = 4 * 1024 * 1024;
function message(code: number, body: Buffer): Buffer {
  const header = Buffer.alloc(OUT_HEADER_BYTES);
  header.writeUInt32LE(OUT_HEADER_BYTES + body.length, 0);
  header.writeInt32LE(code, 4); // positive: a notification, not an error reply
  return Buffer.concat([header, body]); // unique stays 0
}

/** FUSE_NOTIFY_INVAL_INODE for the whole file: attributes and every cached page. */
export function invalInode(nodeid: bigint): Buffer {
  const body = Buffer.alloc(24);
  body.writeBigUInt64LE(nodeid, 0);
  body.writeBigInt64LE(0n, 8); // offset
  body.writeBigInt64LE(0n, 16); // length 0: to the end
  return message(NotifyCode.INVAL_INODE, body);
}

/** FUSE_NOTIFY_INVAL_ENTRY: forget the cached lookup of `name` in `parent` (or its absence). */
export function invalEntry(parent: bigint, name: string): Buffer {
  const nameBytes = Buffer.from(name);
  const body = Buffer.alloc(16 + nameBytes.length + 1);
  body.writeBigUInt64LE(parent, 0);
  body.writeUInt32LE(nameBytes.length, 8);
  nameBytes.copy(body, 16);
  return message(NotifyCode.INVAL_ENTRY, body);
}

/** What to send for one changed path. */
type Verdict = "none" | "inode" | "all";

export class Invalidator {
  /** Changed paths, each with a probe of its host state when the caller has one. */
  private readonly pending = new Map<string, HostProbe | undefined>();
  private scheduled = false;
  /** Paths dropped because too many were pending or the guest was not reading. */
  dropped = 0;
  /** The guest agent reported dropping a notification (its queue was full). */
  private lostInGuest = false;

  /** False once a notification may have been lost, here or in the guest's queue. */
  get reliable(): boolean {
    return this.dropped === 0 && !this.lostInGuest;
  }

  /** The guest said it dropped a notification (NOTIFY_LOST_OPCODE); for the whole session. */
  lost(): void {
    this.lostInGuest = true;
  }

  /**
   * `replaced` gives the message (if any) that makes the guest's FUSE relay drop its listing
   * of a directory node whose name now leads elsewhere or nowhere (relay-listing.ts): its
   * names' own invalidations cannot reach a listing under the old node.
   */
  constructor(
    private readonly inodes: InodeTable,
    private readonly stream: () => Duplex | undefined,
    private readonly replaced?: (node: bigint) => Buffer | undefined,
  ) {}

  /**
   * `path` (in the served tree) changed on the host side: its name, node and parent. With a
   * `probe`, what the guest already knows is left alone (the watcher also reports the guest's
   * own changes, and invalidating those would cost it a round trip each to learn them again).
   */
  changed(path: string, probe?: HostProbe): void {
    if (!this.pending.has(path) && this.pending.size >= MAX_PENDING_PATHS) {
      this.dropped++;
      return;
    }
    // One caller without a probe makes the path's invalidation unconditional.
    const unconditional = this.pending.has(path) && this.pending.get(path) === undefined;
    this.pending.set(path, unconditional ? undefined : probe);
    if (this.scheduled) return;
    this.scheduled = true;
    setTimeout(() => this.flush(), FLUSH_DELAY_MS);
  }

  private flush(): void {
    this.scheduled = false;
    const paths = [...this.pending];
    this.pending.clear();
    const stream = this.stream();
    if (stream === undefined || stream.destroyed) return;
    const messages: Buffer[] = [];
    const seenNodes = new Set<bigint>();
    const inode = (id: bigint | undefined): void => {
      if (id === undefined || seenNodes.has(id)) return;
      seenNodes.add(id);
      messages.push(invalInode(id));
    };
    for (const [path, probe] of paths) {
      const { node, parent, name } = this.inodes.find(path);
      const { verdict, gone } = this.verdict(node, probe);
      if (verdict === "none") continue;
      if (verdict === "inode") {
        inode(node);
        continue;
      }
      const dropListing = node === undefined ? undefined : this.replaced?.(node);
      if (dropListing !== undefined) messages.push(dropListing);
      // The entry first: the kernel then looks the name up again (or learns it is gone).
      if (parent !== undefined && name !== "") messages.push(invalEntry(parent, name));
      inode(node);
      inode(parent);
      // The host removed this name: it no longer leads to the node, whose other names (hard
      // links) must now be the ones its path is built from.
      if (gone && node !== undefined && parent !== undefined) this.inodes.detach(parent, name);
    }
    if (messages.length === 0) return;
    if (stream.writableLength > MAX_UNSENT_BYTES) {
      this.dropped += paths.length;
      return;
    }
    stream.write(Buffer.concat(messages));
    fuseRequestStats.notified(messages.length);
  }

  /**
   * "none" when the host state is what the guest was last told (or the name is absent and
   * the guest holds no node for it); "inode" when the same file changed (its attributes and
   * pages, not its name); "all" otherwise, or when the state cannot be told.
   */
  private verdict(
    node: bigint | undefined,
    probe: HostProbe | undefined,
  ): { verdict: Verdict; gone: boolean } {
    const all = { verdict: "all" as const, gone: false };
    if (probe === undefined) return all;
    let now;
    try {
      now = probe();
    } catch {
      return all;
    }
    if (now === undefined) return all;
    if (now === null) return { verdict: node === undefined ? "none" : "all", gone: true };
    if (node === undefined) return all;
    const told = this.inodes.lastTold(node);
    if (told === undefined || told.ino !== now.ino) return all;
    return { verdict: told.state === statSignature(now).state ? "none" : "inode", gone: false };
  }
}
