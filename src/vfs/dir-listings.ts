/**
 * Lets the guest kernel keep a directory's listing between opens (FOPEN_CACHE_DIR with
 * FOPEN_KEEP_CACHE) only when it is still right, so that repeated READDIRs of an unchanged
 * directory (`git status` reads every directory of a repository) stop crossing to the host.
 *
 * OPENDIR reads the directory anyway (each open serves a snapshot). The kernel fills its
 * cache from the READDIR replies of any handle opened with CACHE_DIR, and drops it at an open
 * without KEEP_CACHE. So KEEP_CACHE is given only when what the cache can hold is known to
 * be this very listing: an open without KEEP_CACHE served the same listing, a READDIR on that
 * handle showed that the kernel took the open (and dropped its old copy), and no handle with
 * another listing was open or read since that open (its replies could have refilled the
 * cache after the drop). Otherwise the open goes without KEEP_CACHE. No timeout and no
 * watcher is involved: a host edit shows at the next open, as before. The kernel also drops
 * its copy itself when the guest changes the directory or an invalidation of it arrives.
 */
import { createHash } from "node:crypto";
import { FOPEN_CACHE_DIR, FOPEN_KEEP_CACHE } from "./fuse-constants.js";
import type { VfsDirEntry } from "./provider.js";

/**
 * Nodes remembered at most; the oldest are forgotten first (they then open without KEEP_CACHE).
 * Node ids are never reused (InodeTable), so a forgotten node's entry is only memory.
 */
const MAX_REMEMBERED = 16_384;

interface NodeState {
  /** The listing served by the last open without KEEP_CACHE. */
  readonly digest: string;
  /** That open's handle, until a READDIR on it confirms the kernel took it. */
  by: bigint | undefined;
  /** A handle with another listing was open or read since that open. */
  tainted: boolean;
  confirmed: boolean;
}

export class DirListings {
  private readonly nodes = new Map<bigint, NodeState>();
  /** Open directory handles: their node and listing. */
  private readonly handles = new Map<bigint, { nodeid: bigint; digest: string }>();

  constructor(private readonly maxRemembered = MAX_REMEMBERED) {}

  /** The open flags for handle `fh` of `nodeid` whose snapshot is `entries` (in served order). */
  opened(nodeid: bigint, fh: bigint, entries: readonly VfsDirEntry[]): number {
    const digest = listingDigest(entries);
    const other = [...this.handles.values()].some(
      (h) => h.nodeid === nodeid && h.digest !== digest,
    );
    this.handles.set(fh, { nodeid, digest });
    const state = this.nodes.get(nodeid);
    if (state?.confirmed && state.digest === digest && !other) return keep;
    this.nodes.delete(nodeid); // re-inserted: the newest last, for eviction
    this.nodes.set(nodeid, { digest, by: fh, tainted: other, confirmed: false });
    if (this.nodes.size > this.maxRemembered) {
      const oldest = this.nodes.keys().next().value;
      if (oldest !== undefined) this.nodes.delete(oldest);
    }
    return FOPEN_CACHE_DIR;
  }

  /** A READDIR on `fh` is being served. */
  read(fh: bigint): void {
    const handle = this.handles.get(fh);
    const state = handle && this.nodes.get(handle.nodeid);
    if (handle === undefined || state === undefined) return;
    if (handle.digest !== state.digest) {
      state.tainted = true;
      state.confirmed = false;
    } else if (state.by === fh) {
      state.by = undefined;
      state.confirmed = !state.tainted;
    }
  }

  /** RELEASEDIR of `fh`. */
  released(fh: bigint): void {
    this.handles.delete(fh);
  }
}

const keep = FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE;

/** What the kernel caches of a listing: each entry's name and type, in order. */
function listingDigest(entries: readonly VfsDirEntry[]): string {
  const hash = createHash("sha256");
  for (const { name, type } of entries) hash.update(`${type}\0${name}\0`);
  return hash.digest("base64");
}
