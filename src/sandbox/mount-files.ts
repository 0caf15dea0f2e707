/**
 * The file methods for paths under a mount, served by the host provider directly: no trip
 * through the guest agent and the FUSE relay, so large copies run at host disk speed. They
 * go through the same hooked provider the guest uses, so rules and events apply (origin
 * "api"), and every change is invalidated in the guest's cache at once. Semantics follow the
 * agent's: writeFile creates parents and truncates, mkdir is `mkdir -p`, `remove` with
 * `recursive` is `rm -rf`. A symlink in the way (ELOOP, ENOTDIR) is left to the agent, which
 * resolves it the way the guest kernel does (it may point out of the mount).
 */
import { posix } from "node:path";
import { Readable } from "node:stream";
import { getSystemErrorMap } from "node:util";
import { GuestFileError, errnoName } from "../channel/index.js";
import { WheellockError } from "../errors.js";
import {
  Errno,
  isWithin,
  typeBits,
  MAX_WRITE_BYTES,
  VfsError,
  toErrno,
  type VfsProvider,
  type VfsStat,
} from "../vfs/index.js";
import type { FileInfo } from "./api.js";

/** Thrown when the agent must answer instead (a symlink on the way). */
export class NeedsAgent extends Error {}

const WRITE_FLAGS = { read: false, write: true, append: false, truncate: true };
const READ_FLAGS = { read: true, write: false, append: false, truncate: false };

/** A provider's errno as the agent would report it; anything else passes through. */
function fileError(path: string, err: unknown): unknown {
  const isSystem =
    typeof (err as { code?: unknown })?.code === "string" && !(err instanceof WheellockError);
  if (!(err instanceof VfsError) && !isSystem) return err;
  const errno = toErrno(err);
  // A symlink as the last component (ELOOP) or in the middle (ENOTDIR from the provider, which
  // never follows one): the agent answers, resolving it as the guest kernel does. A real
  // ENOTDIR costs one more round trip and gets the same answer from the agent.
  if (errno === Errno.ELOOP || errno === Errno.ENOTDIR) return new NeedsAgent();
  return new GuestFileError(path, describeErrno(errno), errno);
}

/** "No such file or directory", as the agent's strerror() words it. */
function describeErrno(errno: number): string {
  const text = getSystemErrorMap().get(-errno)?.[1];
  return text === undefined
    ? (errnoName(errno) ?? `errno ${errno}`)
    : text[0]!.toUpperCase() + text.slice(1);
}

function infoOf(name: string, stat: VfsStat, linkTarget?: string): FileInfo {
  return {
    name,
    sizeBytes: stat.sizeBytes,
    mode: typeBits(stat.type) | stat.mode,
    isDir: stat.type === "dir",
    isSymlink: stat.type === "symlink",
    uid: stat.uid,
    gid: stat.gid,
    mtime: new Date(stat.mtimeMs),
    ...(linkTarget !== undefined ? { linkTarget } : {}),
  };
}

function* pieces(chunk: Buffer): Generator<Buffer> {
  for (let at = 0; at < chunk.length; at += MAX_WRITE_BYTES) {
    yield chunk.subarray(at, at + MAX_WRITE_BYTES);
  }
}

export class MountFiles {
  constructor(
    /** The hooked provider the guest is served from; its paths are guest paths. */
    private readonly provider: VfsProvider,
    private readonly mountPaths: readonly string[],
    /** Drops the guest's cached view of a path this API changed. */
    private readonly invalidate: (path: string) => void,
  ) {}

  /** True when `path` (normalized, absolute) lies in a mount. */
  serves(path: string): boolean {
    return this.mountPaths.some((mount) => isWithin(path, mount));
  }

  private async guarded<T>(path: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw fileError(path, err);
    }
  }

  private async exists(path: string): Promise<VfsStat | undefined> {
    try {
      return await this.provider.stat(path);
    } catch (err) {
      if (toErrno(err) === Errno.ENOENT) return undefined;
      throw err;
    }
  }

  /** Creates the missing directories of `path` below its mount; returns those created. */
  private async makeDirs(path: string, leafMode: number | undefined): Promise<void> {
    const mount =
      this.mountPaths
        .filter((m) => isWithin(path, m))
        .sort()
        .at(-1) ?? "/";
    const below = path.slice(mount.length).split("/").filter(Boolean);
    let current = mount;
    for (let i = 0; i < below.length; i++) {
      current = posix.join(current, below[i]!);
      const stat = await this.exists(current);
      if (stat !== undefined) {
        if (stat.type === "symlink") throw new NeedsAgent();
        if (stat.type !== "dir") throw new VfsError(Errno.ENOTDIR);
        continue;
      }
      const isLeaf = i === below.length - 1;
      const mode = isLeaf && leafMode !== undefined ? leafMode : 0o755;
      await this.provider.mkdir(current, mode, { uid: 0, gid: 0 });
      // mkdir(2) on the host applies the host umask; the mode asked for is the mode wanted.
      if (isLeaf && leafMode !== undefined) await this.provider.setattr(current, { mode });
      this.invalidate(current);
    }
  }

  async writeFile(
    path: string,
    body: Buffer | Readable | AsyncIterable<Buffer | Uint8Array>,
    options: { mode?: number; uid?: number; gid?: number },
  ): Promise<void> {
    await this.guarded(path, async () => {
      await this.makeDirs(posix.dirname(path), undefined);
      const owner = { uid: options.uid ?? 0, gid: options.gid ?? 0 };
      const handle = await this.provider
        .create(path, 0o600, WRITE_FLAGS, owner)
        .catch((err: unknown) => {
          if (toErrno(err) !== Errno.EEXIST) throw err;
          return this.provider.open(path, WRITE_FLAGS);
        });
      try {
        await this.provider.setattr(path, {
          mode: (options.mode ?? 0o644) & 0o7777,
          ...(options.uid !== undefined ? { uid: options.uid } : {}),
          ...(options.gid !== undefined ? { gid: options.gid } : {}),
        });
        let offset = 0;
        const chunks = Buffer.isBuffer(body) ? [body] : body;
        for await (const chunk of chunks) {
          const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
          for (const piece of pieces(buf)) {
            const written = await handle.write(offset, piece);
            if (written !== piece.length) throw new VfsError(Errno.EIO);
            offset += written;
          }
        }
      } finally {
        await handle.close();
        this.invalidate(path);
      }
    });
  }

  /** Streams the file in max_write-sized pieces (never the whole file in memory). */
  readFileStream(path: string, agent: () => Readable): Readable {
    const provider = this.provider;
    const guarded = this.guarded.bind(this);
    async function* chunks(): AsyncGenerator<Buffer> {
      let handle;
      try {
        handle = await guarded(path, () => provider.open(path, READ_FLAGS));
      } catch (err) {
        if (!(err instanceof NeedsAgent)) throw err;
        yield* agent();
        return;
      }
      try {
        for (let offset = 0; ;) {
          const data = await guarded(path, () => handle.read(offset, MAX_WRITE_BYTES));
          if (data.length === 0) return;
          offset += data.length;
          yield data;
        }
      } finally {
        await handle.close();
      }
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  async list(path: string): Promise<FileInfo[]> {
    return this.guarded(path, async () => {
      const entries = await this.provider.readdir(path);
      const infos: FileInfo[] = [];
      for (const entry of entries) {
        const child = posix.join(path, entry.name);
        const stat = await this.exists(child);
        if (stat === undefined) continue; // removed while listing
        const target = stat.type === "symlink" ? await this.provider.readlink(child) : undefined;
        infos.push(infoOf(entry.name, stat, target));
      }
      return infos;
    });
  }

  async stat(path: string, followSymlinks: boolean): Promise<FileInfo> {
    return this.guarded(path, async () => {
      const stat = await this.provider.stat(path);
      if (stat.type !== "symlink") return infoOf(posix.basename(path), stat);
      if (followSymlinks) throw new NeedsAgent();
      return infoOf(posix.basename(path), stat, await this.provider.readlink(path));
    });
  }

  async mkdir(path: string, mode: number): Promise<void> {
    await this.guarded(path, () => this.makeDirs(path, mode & 0o7777));
  }

  async remove(path: string, recursive: boolean): Promise<void> {
    await this.guarded(path, async () => {
      const stat = recursive ? await this.exists(path) : await this.provider.stat(path);
      if (stat === undefined) return; // rm -rf of nothing
      try {
        await this.removeTree(path, stat, recursive);
      } finally {
        this.invalidate(path);
      }
    });
  }

  private async removeTree(path: string, stat: VfsStat, recursive: boolean): Promise<void> {
    if (stat.type !== "dir") return this.provider.unlink(path);
    if (recursive) {
      for (const entry of await this.provider.readdir(path)) {
        const child = posix.join(path, entry.name);
        const childStat = await this.exists(child);
        if (childStat !== undefined) await this.removeTree(child, childStat, true);
      }
    }
    await this.provider.rmdir(path);
  }
}
