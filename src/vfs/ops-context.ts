/** What every request handler gets: the provider, the tables and the caching policy. */
import type { FuseInHeader } from "./fuse-framer.js";
import type { BodyReader } from "./fuse-reader.js";
import type { DirListings } from "./dir-listings.js";
import type { CacheTimeouts } from "./fuse-reply.js";
import type { HandleTable } from "./handle-table.js";
import type { InodeTable } from "./inode-table.js";
import type { RelayListings } from "./relay-listing.js";
import type { VfsProvider } from "./provider.js";

export interface OpsContext {
  readonly provider: VfsProvider;
  readonly inodes: InodeTable;
  readonly handles: HandleTable;
  /** Which directory listings the guest kernel may keep between opens. */
  readonly listings: DirListings;
  /**
   * How long the guest may cache the name and attributes of `path`. Ask BEFORE reading the
   * provider: a path whose changes start being watched after that read must not get a long
   * timeout for a stat that may already be stale.
   */
  readonly timeouts: (path: string) => CacheTimeouts;
  /** Which directory listings the guest's FUSE relay holds (relay-listing.ts). */
  readonly relay: RelayListings;
  /**
   * Messages for the guest's relay that this request caused (relay-listing.ts, and a changed
   * directory's attributes: ops-node.ts pushDirAttr), written to the stream just before its
   * reply; a fresh array for every request.
   */
  readonly pushes: Buffer[];
}

/** A handler returns the reply payload, or undefined for requests that get no reply. */
export type OpHandler = (
  ctx: OpsContext,
  header: FuseInHeader,
  body: BodyReader,
) => Promise<Buffer | undefined>;
