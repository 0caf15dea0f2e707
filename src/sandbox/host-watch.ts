/**
 * Watches a host directory tree for changes made behind the guest's back (an editor, git on
 * the host) so the guest's cache can be invalidated at once. One inotify watch per directory,
 * at most `maxDirs` of them: Node's own recursive watch has no bound, and a huge tree would
 * exhaust the user's inotify watches for every other program. Directories past the bound are
 * not watched; there the guest sees changes when its cache times out (1 s by default).
 */
import { watch, type FSWatcher } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";

export const DEFAULT_MAX_WATCHED_DIRS = 2048;

export class HostTreeWatcher {
  private readonly watchers = new Map<string, FSWatcher>();
  private closed = false;
  /** Directories left unwatched because of the bound. */
  skipped = 0;

  /** `onChange` gets paths relative to `root` ("" for the root), "/"-separated. */
  constructor(
    private readonly root: string,
    private readonly onChange: (relative: string) => void,
    private readonly maxDirs = DEFAULT_MAX_WATCHED_DIRS,
  ) {}

  /** Watches the root and its directories, breadth first, up to the bound. */
  async start(): Promise<void> {
    await this.addTree("");
  }

  /** True while `dir` (relative, "" for the root) is watched: its changes are reported. */
  covers(dir: string): boolean {
    return !this.closed && this.watchers.has(dir);
  }

  get watchedDirs(): number {
    return this.watchers.size;
  }

  /**
   * `fresh`: the tree appeared after the start (a new directory). What was made in it before
   * its watch existed raised no event, so each name found is reported (the guest may already
   * hold the directory as empty, e.g. the relay's listing after its own mkdir).
   */
  private async addTree(start: string, fresh = false): Promise<void> {
    const queue = [start];
    while (queue.length > 0 && !this.closed) {
      const dir = queue.shift()!;
      if (!this.watchDir(dir)) {
        this.skipped += queue.length + 1;
        return;
      }
      const entries = await readdir(join(this.root, dir), { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        const path = dir === "" ? entry.name : `${dir}/${entry.name}`;
        if (fresh) this.onChange(path);
        if (entry.isDirectory()) queue.push(path);
      }
    }
  }

  private watchDir(dir: string): boolean {
    if (this.watchers.has(dir)) return true;
    if (this.watchers.size >= this.maxDirs) return false;
    let watcher: FSWatcher;
    try {
      watcher = watch(join(this.root, dir), { persistent: false }, (event, name) => {
        if (typeof name !== "string") return;
        const path = dir === "" ? name : `${dir}/${name}`;
        this.onChange(path);
        if (event === "rename") void this.renamed(path);
      });
    } catch {
      return true; // gone already, or no permission: nothing to watch there
    }
    // ENOSPC (no inotify watches left) and a removed directory both end up here.
    watcher.on("error", () => this.unwatch(dir));
    this.watchers.set(dir, watcher);
    return true;
  }

  /** A name appeared or vanished: watch a new directory, drop watches of a gone one. */
  private async renamed(path: string): Promise<void> {
    const stat = await lstat(join(this.root, path)).catch(() => undefined);
    if (stat?.isDirectory()) await this.addTree(path, true);
    else this.unwatch(path);
  }

  private unwatch(dir: string): void {
    for (const [path, watcher] of this.watchers) {
      if (path === dir || path.startsWith(`${dir}/`)) {
        watcher.close();
        this.watchers.delete(path);
      }
    }
  }

  close(): void {
    this.closed = true;
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
  }
}
