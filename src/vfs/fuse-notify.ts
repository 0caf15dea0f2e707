/**
 * Cache invalidation: unsolicited messages (unique 0, error = notify code) that tell the guest
 * kernel to drop what it cached about a name or a node when the host side changed it. Changed
 * paths are collected and sent together on the next turn of the event loop, de-duplicated and
 * bounded: past the bound, or while the guest is not reading, they are dropped and the cache
 * timeouts alone bound how stale the guest's view can get.
 */
import type { Duplex } from "node:stream";
import { NotifyCode, OUT_HEADER_BYTES } from "./fuse-constants.js";
import type { InodeTable } from "./inode-table.js";

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

export class Invalidator {
  private readonly pending = new Set<string>();
  private scheduled = false;
  /** Paths dropped because too many were pending or the guest was not reading. */
  dropped = 0;

  constructor(
    private readonly inodes: InodeTable,
    private readonly stream: () => Duplex | undefined,
  ) {}

  /** `path` (in the served tree) changed on the host side: its name, node and parent. */
  changed(path: string): void {
    if (this.pending.size >= MAX_PENDING_PATHS) {
      this.dropped++;
      return;
    }
    this.pending.add(path);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
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
    for (const path of paths) {
      const { node, parent, name } = this.inodes.find(path);
      // The entry first: the kernel then looks the name up again (or learns it is gone).
      if (parent !== undefined && name !== "") messages.push(invalEntry(parent, name));
      inode(node);
      inode(parent);
    }
    if (messages.length === 0) return;
    if (stream.writableLength > MAX_UNSENT_BYTES) {
      this.dropped += paths.length;
      return;
    }
    stream.write(Buffer.concat(messages));
  }
}
