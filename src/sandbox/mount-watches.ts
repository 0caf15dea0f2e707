/**
 * Host directories can change behind the guest's back: watch them and invalidate what the
 * guest cached. Watching starts in the background; until a directory is watched (or where the
 * watch bound stops it), the short default cache timeouts alone apply. Inside a watched
 * directory every change is invalidated at once, so there the guest may cache names and
 * attributes far longer (`timeoutsFor`): repeated stats (`git status`, a build's freshness
 * checks) stop crossing to the host.
 */
import { lstatSync } from "node:fs";
import { join, posix } from "node:path";
import type { MountConfig } from "../config/index.js";
import type { HostProbe, ProbedStat } from "../vfs/index.js";
import { HostTreeWatcher } from "./host-watch.js";

/** The cache timeout inside a watched directory: how stale a missed change could stay. */
export const WATCHED_CACHE_MS = 60_000;
const WATCHED = { entryMs: WATCHED_CACHE_MS, attrMs: WATCHED_CACHE_MS } as const;

export class MountWatches {
  private readonly watched: { guestRoot: string; watcher: HostTreeWatcher }[] = [];

  /** `guestPaths[i]` is where `mounts`' i-th entry is mounted in the guest. */
  constructor(
    private readonly mounts: Readonly<Record<string, MountConfig>>,
    private readonly guestPaths: readonly string[],
  ) {}

  /**
   * Starts watching every host directory behind a mount; `invalidate` gets guest paths and,
   * for a plain host directory (whose files the guest sees as they are), a probe of the host
   * file, so that the echo of the guest's own changes is not invalidated. An overlay's guest
   * view is not its host directory's: its changes are invalidated unconditionally.
   */
  start(invalidate: (guestPath: string, probe?: HostProbe) => void): void {
    for (const [i, key] of Object.keys(this.mounts).entries()) {
      const mount = this.mounts[key]!;
      if ((mount.type !== "host_fs" && mount.type !== "overlay") || mount.hostPath === undefined) {
        continue;
      }
      const guestRoot = this.guestPaths[i]!;
      const hostPath = mount.hostPath;
      const plain = mount.type === "host_fs";
      const watcher = new HostTreeWatcher(hostPath, (relative) =>
        invalidate(
          relative === "" ? guestRoot : posix.join(guestRoot, relative),
          plain ? () => probeHost(join(hostPath, relative)) : undefined,
        ),
      );
      void watcher.start().catch(() => undefined);
      this.watched.push({ guestRoot, watcher });
    }
  }

  /**
   * Long timeouts for a path below a mount root whose directory is watched now (inotify on a
   * directory reports its entries' creation, removal, renames, writes and attribute changes);
   * undefined elsewhere, the mount roots included.
   */
  timeoutsFor(path: string): typeof WATCHED | undefined {
    for (const { guestRoot, watcher } of this.watched) {
      if (!path.startsWith(`${guestRoot}/`)) continue;
      const dir = posix.dirname(path.slice(guestRoot.length + 1));
      return watcher.covers(dir === "." ? "" : dir) ? WATCHED : undefined;
    }
    return undefined;
  }

  close(): void {
    for (const { watcher } of this.watched) watcher.close();
  }
}

/** The host file's state now (null: no such name); synchronous, one lstat of a cached dentry. */
function probeHost(path: string): ProbedStat | null {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (st === undefined) return null;
  return {
    ino: st.ino,
    sizeBytes: st.size,
    mtimeMs: st.mtimeMs,
    ctimeMs: st.ctimeMs,
    mode: st.mode & 0o7777,
  };
}
