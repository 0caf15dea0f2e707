/**
 * A provider's whole tree as plain data plus a blob of file bytes: what a copy of a sandbox
 * (fork, checkpoint) needs of a mount whose contents live in this process (a memory mount, an
 * overlay's upper layer). Exported while the guest is stopped, imported into a fresh provider
 * of the copy before its guest runs. The import returns how file ids changed, so the copy's
 * FUSE session can keep the node ids its kernel holds on the same files.
 */
import { open, type FileHandle } from "node:fs/promises";
import { childPath } from "./names.js";
import type { VfsFileType, VfsOpenFlags, VfsOwner, VfsProvider } from "./provider.js";

export interface TreeEntry {
  /** Absolute in the provider; a parent always comes before its children. */
  path: string;
  type: Exclude<VfsFileType, "other">;
  mode: number;
  uid: number;
  gid: number;
  atimeMs: number;
  mtimeMs: number;
  /** The provider's file id, to keep hard links and the guest's node ids together. */
  fileId?: string;
  /** A symlink's target. */
  target?: string;
  /** A file's bytes: offset and length in the blob. */
  data?: [offset: number, sizeBytes: number];
  /** Another name of a file already listed (a hard link): that path. */
  linkTo?: string;
}

/** Where the file bytes go while a tree is exported. */
export interface BlobSink {
  /** Starts a file of `sizeBytes`; returns its offset. */
  begin(sizeBytes: number): number;
  write(offset: number, data: Buffer): Promise<void>;
}

/** Where they come from at an import. */
export interface BlobSource {
  read(offset: number, lengthBytes: number): Promise<Buffer>;
}

const COPY_BYTES = 1 << 20;
/** Files of at least this size start on a boundary of it, so stored copies deduplicate. */
const ALIGN_BYTES = 1 << 20;
const READ: VfsOpenFlags = { read: true, write: false, append: false, truncate: false };
const WRITE: VfsOpenFlags = { read: false, write: true, append: false, truncate: false };

/** A blob file: files packed one after another (large ones aligned), written by offset. */
export class BlobFile implements BlobSink, BlobSource {
  private end = 0;
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
  ) {}

  static async create(path: string): Promise<BlobFile> {
    return new BlobFile(path, await open(path, "wx", 0o600));
  }

  static async openRead(path: string): Promise<BlobFile> {
    const blob = new BlobFile(path, await open(path, "r"));
    blob.end = (await blob.handle.stat()).size;
    return blob;
  }

  get sizeBytes(): number {
    return this.end;
  }

  begin(sizeBytes: number): number {
    const offset =
      sizeBytes >= ALIGN_BYTES ? Math.ceil(this.end / ALIGN_BYTES) * ALIGN_BYTES : this.end;
    this.end = offset + sizeBytes;
    return offset;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    await this.handle.write(data, 0, data.length, offset);
  }

  async read(offset: number, lengthBytes: number): Promise<Buffer> {
    if (offset < 0 || lengthBytes < 0 || offset + lengthBytes > this.end)
      throw new Error(`the data file ends before byte ${offset + lengthBytes}`);
    const buffer = Buffer.alloc(lengthBytes);
    const { bytesRead } = await this.handle.read(buffer, 0, lengthBytes, offset);
    if (bytesRead !== lengthBytes) throw new Error(`the data file is short at byte ${offset}`);
    return buffer;
  }

  /** Makes the file as long as what was begun (a hole at the end has no bytes of its own). */
  async close(): Promise<void> {
    try {
      if ((await this.handle.stat()).size < this.end) await this.handle.truncate(this.end);
    } finally {
      await this.handle.close();
    }
  }
}

/**
 * Every entry below `root` (not the root itself), parents first. `owner` gives the owner the
 * guest sees where the provider's stat does not (an overlay's upper layer).
 */
export async function exportTree(
  provider: VfsProvider,
  sink: BlobSink,
  root = "/",
): Promise<TreeEntry[]> {
  const entries: TreeEntry[] = [];
  const firstName = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    const names = (await provider.readdir(dir)).map((e) => e.name).sort();
    for (const name of names) {
      const path = childPath(dir, name);
      const stat = await provider.stat(path);
      if (stat.type === "other") continue;
      const entry: TreeEntry = {
        path,
        type: stat.type,
        mode: stat.mode,
        uid: stat.uid,
        gid: stat.gid,
        atimeMs: stat.atimeMs,
        mtimeMs: stat.mtimeMs,
        ...(stat.fileId === undefined ? {} : { fileId: stat.fileId }),
      };
      const linked =
        stat.type !== "dir" && stat.fileId !== undefined ? firstName.get(stat.fileId) : undefined;
      if (linked !== undefined) {
        entries.push({ ...entry, linkTo: linked });
        continue;
      }
      if (stat.type !== "dir" && stat.fileId !== undefined) firstName.set(stat.fileId, path);
      if (stat.type === "symlink") entry.target = await provider.readlink(path);
      if (stat.type === "file") entry.data = await copyOut(provider, path, sink);
      entries.push(entry);
      if (stat.type === "dir") await walk(path);
    }
  };
  await walk(root);
  return entries;
}

async function copyOut(
  provider: VfsProvider,
  path: string,
  sink: BlobSink,
): Promise<[number, number]> {
  const handle = await provider.open(path, READ);
  try {
    const { sizeBytes } = await handle.stat();
    const offset = sink.begin(sizeBytes);
    for (let at = 0; at < sizeBytes;) {
      const chunk = await handle.read(at, Math.min(COPY_BYTES, sizeBytes - at));
      if (chunk.length === 0) throw new Error(`${path} shrank while it was saved`);
      await sink.write(offset + at, chunk);
      at += chunk.length;
    }
    return [offset, sizeBytes];
  } finally {
    await handle.close();
  }
}

/** An entry read from storage, checked before anything is made of it. */
function checkEntry(entry: TreeEntry, seen: ReadonlySet<string>): void {
  const ok =
    typeof entry.path === "string" &&
    entry.path.startsWith("/") &&
    !entry.path
      .split("/")
      .slice(1)
      .some((n) => n === "" || n === "." || n === "..") &&
    ["dir", "file", "symlink", "fifo"].includes(entry.type) &&
    [entry.mode, entry.uid, entry.gid, entry.atimeMs, entry.mtimeMs].every(Number.isFinite) &&
    (entry.linkTo === undefined || seen.has(entry.linkTo)) &&
    (entry.type !== "symlink" || entry.linkTo !== undefined || typeof entry.target === "string");
  if (!ok) throw new Error(`bad entry ${JSON.stringify(entry.path)}`);
}

/**
 * Makes `entries` in an empty `provider` (through its own methods, so a quota over it counts
 * them). Returns each exported file id that now has another id (old -> new).
 */
export async function importTree(
  provider: VfsProvider,
  entries: readonly TreeEntry[],
  source: BlobSource,
  onEntry?: (entry: TreeEntry, fileId: string | undefined) => void,
): Promise<Map<string, string>> {
  const renamed = new Map<string, string>();
  const seen = new Set<string>();
  const dirs: TreeEntry[] = [];
  for (const entry of entries) {
    checkEntry(entry, seen);
    seen.add(entry.path);
    const owner: VfsOwner = { uid: entry.uid, gid: entry.gid };
    if (entry.linkTo !== undefined) {
      await provider.link(entry.linkTo, entry.path);
    } else if (entry.type === "dir") {
      await provider.mkdir(entry.path, entry.mode, owner);
      dirs.push(entry);
    } else if (entry.type === "symlink") {
      await provider.symlink(entry.target!, entry.path, owner);
    } else if (entry.type === "fifo") {
      await provider.mknod(entry.path, "fifo", entry.mode, owner);
    } else {
      await copyIn(provider, entry, owner, source);
    }
    if (entry.linkTo === undefined && entry.type !== "symlink" && entry.type !== "dir")
      await setAttrs(provider, entry);
    const fileId = (await provider.stat(entry.path)).fileId;
    if (entry.fileId !== undefined && fileId !== undefined && fileId !== entry.fileId)
      renamed.set(entry.fileId, fileId);
    onEntry?.(entry, fileId);
  }
  // Last, deepest first: making their entries changed the directories' times.
  for (const dir of dirs.reverse()) await setAttrs(provider, dir);
  return renamed;
}

async function setAttrs(provider: VfsProvider, entry: TreeEntry): Promise<void> {
  await provider.setattr(entry.path, {
    mode: entry.mode,
    atimeMs: entry.atimeMs,
    mtimeMs: entry.mtimeMs,
  });
}

async function copyIn(
  provider: VfsProvider,
  entry: TreeEntry,
  owner: VfsOwner,
  source: BlobSource,
): Promise<void> {
  const handle = await provider.create(entry.path, entry.mode, WRITE, owner);
  try {
    const [offset, sizeBytes] = entry.data ?? [0, 0];
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(sizeBytes))
      throw new Error(`bad entry ${JSON.stringify(entry.path)}`);
    for (let at = 0; at < sizeBytes;) {
      const chunk = await source.read(offset + at, Math.min(COPY_BYTES, sizeBytes - at));
      await handle.write(at, chunk);
      at += chunk.length;
    }
  } finally {
    await handle.close();
  }
}

/** The attributes of a tree's root (it is never removed, so it is not an entry). */
export type RootEntry = Pick<TreeEntry, "mode" | "uid" | "gid" | "atimeMs" | "mtimeMs">;

/** What a mount whose contents live in this process holds, for a copy of its sandbox. */
export type MountImage =
  | { kind: "memory"; root: RootEntry; entries: TreeEntry[] }
  | {
      kind: "overlay";
      /** The upper layer's tree, with the owners the guest sees. */
      entries: TreeEntry[];
      upperRoot: RootEntry;
      whiteouts: string[];
      opaque: string[];
      rootAttrs: { mode?: number; uid?: number; gid?: number };
      rootChanged: boolean;
    };

/** A provider that can hand its contents to a copy (MemoryProvider, OverlayProvider). */
export interface CopyableContents {
  exportContents(sink: BlobSink): Promise<MountImage>;
  /** Into a provider nobody used yet; returns the file ids that changed (old -> new). */
  importContents(image: MountImage, source: BlobSource): Promise<Map<string, string>>;
}

export async function rootEntry(provider: VfsProvider): Promise<RootEntry> {
  const { mode, uid, gid, atimeMs, mtimeMs } = await provider.stat("/");
  return { mode, uid, gid, atimeMs, mtimeMs };
}
