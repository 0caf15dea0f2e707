/**
 * COPY/ADD destination semantics (Docker's): the destination is relative to WORKDIR unless
 * absolute; it is a directory when it ends in `/`, already is one in the image, or several
 * sources are copied; a source directory's contents (not the directory) are copied into it;
 * missing directories on the way are created (0755, owned like the copied files). Symlinks
 * in the image on the way are followed inside the image (`/lib` -> `usr/lib`), so the layer
 * never writes through one.
 */
import { posix } from "node:path";
import { ErrBuild } from "../../errors.js";
import type { Ext4Reader } from "../ext4/reader.js";
import { resolveInImage } from "../fs/resolve.js";
import type { LayerEntry, LayerEntryKind } from "../layer/entry.js";

/** One thing to copy: a layer entry's metadata, at a path below its item. */
export type CopyFile = Pick<
  LayerEntry,
  "mode" | "uid" | "gid" | "mtimeSec" | "sizeBytes" | "content"
> & {
  /** Path below the item ("" is the item itself). */
  rel: string;
  kind: Extract<LayerEntryKind, "file" | "dir" | "symlink" | "hardlink">;
  /** Symlink target, or for a hard link the `rel` of the file it links to. */
  linkTarget?: string;
};

export interface CopyItem {
  /** The name a single file gets in a destination directory. */
  name: string;
  /** Its contents go into the destination (a directory or an unpacked archive). */
  isDir: boolean;
  files: CopyFile[];
}

export interface CopyOptions {
  what: string;
  lower: Ext4Reader;
  workdir: string;
  /** The destination as written (after variable expansion). */
  dest: string;
  /** `--chown`: replaces every owner. */
  owner?: { uid: number; gid: number };
  /** `--chmod`: replaces every mode (not of symlinks). */
  mode?: number;
  mtimeClampSec: number;
}

export async function copyEntries(items: CopyItem[], opts: CopyOptions): Promise<LayerEntry[]> {
  const destAbs = opts.dest.startsWith("/")
    ? opts.dest
    : posix.join(opts.workdir || "/", opts.dest);
  const dirSyntax = /\/$|(^|\/)\.$/.test(opts.dest) || opts.dest === "";
  const several = items.length > 1;
  if (several && !dirSyntax)
    throw new ErrBuild(
      `${opts.what}: with more than one source the destination must be a directory ending in /`,
    );
  const dest = await resolveInImage(opts.lower, destAbs);
  const destIsDir = dest.inode?.kind === "dir";
  const out = new Map<string, LayerEntry>();
  const clamp = (t: number): number => Math.min(t, opts.mtimeClampSec);
  const owned = (uid: number, gid: number) =>
    opts.owner ? { uid: opts.owner.uid, gid: opts.owner.gid } : { uid, gid };

  /** Directory entries for what is missing of `rel`'s parents (and `rel` when `self`). */
  const ensureDirs = async (rel: string, self: boolean): Promise<void> => {
    const parts = rel.split("/").filter((p) => p !== "");
    const upto = self ? parts.length : parts.length - 1;
    for (let i = 1; i <= upto; i++) {
      const p = parts.slice(0, i).join("/");
      if (out.has(p)) continue;
      const { inode } = await resolveInImage(opts.lower, p);
      if (inode) {
        if (inode.kind !== "dir")
          throw new ErrBuild(`${opts.what}: /${p} exists in the image and is not a directory`);
        continue;
      }
      out.set(p, {
        path: p,
        kind: "dir",
        mode: 0o755,
        ...owned(0, 0),
        mtimeSec: clamp(0),
      });
    }
  };

  for (const item of items) {
    const into = item.isDir || dirSyntax || destIsDir || several;
    const base = item.isDir ? dest.rel : into ? posix.join(dest.rel, item.name) : dest.rel;
    if (base === "" && !item.isDir) throw new ErrBuild(`${opts.what}: cannot copy a file onto /`);
    await ensureDirs(base, item.isDir);
    for (const f of item.files) {
      if (f.rel === "" && item.isDir) continue;
      const path = f.rel === "" ? base : base === "" ? f.rel : `${base}/${f.rel}`;
      const mode = f.kind === "symlink" ? 0o777 : (opts.mode ?? f.mode);
      const entry: LayerEntry = {
        path,
        kind: f.kind,
        mode,
        ...owned(f.uid, f.gid),
        mtimeSec: clamp(f.mtimeSec),
        ...(f.sizeBytes !== undefined ? { sizeBytes: f.sizeBytes } : {}),
        ...(f.content ? { content: f.content } : {}),
      };
      if (f.kind === "symlink") entry.linkTarget = f.linkTarget ?? "";
      if (f.kind === "hardlink")
        entry.linkTarget = base === "" ? (f.linkTarget ?? "") : `${base}/${f.linkTarget ?? ""}`;
      out.set(path, entry);
    }
  }
  return [...out.values()];
}
