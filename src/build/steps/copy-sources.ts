/**
 * Where COPY and ADD read from, each turned into CopyItems (copy-entries.ts): the build
 * context, another stage's or image's root disk (`--from`), and heredocs.
 */
import { posix } from "node:path";
import { ErrBuild } from "../../errors.js";
import { compilePathGlob } from "../../util/index.js";
import { contextFileContent, type ContextSource } from "../context.js";
import type { Ext4Inode, Ext4Reader } from "../ext4/reader.js";
import { resolveInImage } from "../fs/resolve.js";
import type { CopyFile, CopyItem } from "./copy-entries.js";

/** Context files are owned by root in the image (Docker's rule without --chown). */
export function contextItems(sources: readonly ContextSource[]): CopyItem[] {
  return sources.map((s) => ({
    name: s.name,
    isDir: s.isDir,
    files: s.files.map((f): CopyFile => ({
      rel: f.rel,
      kind: f.kind,
      mode: f.mode,
      uid: 0,
      gid: 0,
      mtimeSec: f.mtimeSec,
      ...(f.kind === "file"
        ? { sizeBytes: f.sizeBytes, content: () => contextFileContent(f) }
        : {}),
      ...(f.linkTarget !== undefined ? { linkTarget: f.linkTarget } : {}),
    })),
  }));
}

export function heredocItem(name: string, content: string): CopyItem {
  const bytes = Buffer.from(content);
  return {
    name,
    isDir: false,
    files: [
      {
        rel: "",
        kind: "file",
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtimeSec: 0,
        sizeBytes: bytes.length,
        content: () => [bytes],
      },
    ],
  };
}

/**
 * Sources in another stage's (or image's) root: the path is resolved in that root (symlinks
 * followed inside it), a directory is walked, owners and modes are kept (BuildKit's rule).
 */
export async function stageItems(
  reader: Ext4Reader,
  sources: readonly string[],
  what: string,
): Promise<CopyItem[]> {
  const items: CopyItem[] = [];
  for (const source of sources) {
    const matches = /[*?[]/.test(source) ? await globInImage(reader, source) : [source];
    if (matches.length === 0) throw new ErrBuild(`${what}: nothing matches ${source}`);
    for (const m of matches) {
      const { inode } = await resolveInImage(reader, m);
      if (!inode) throw new ErrBuild(`${what}: ${m}: no such file or directory`);
      const files: CopyFile[] = [];
      await walkImage(reader, inode, "", files);
      items.push({
        name: posix.basename(posix.normalize(`/${m}`)) || "/",
        isDir: inode.kind === "dir",
        files,
      });
    }
  }
  return items;
}

async function walkImage(
  reader: Ext4Reader,
  inode: Ext4Inode,
  rel: string,
  out: CopyFile[],
): Promise<void> {
  const base = { rel, mode: inode.mode, uid: inode.uid, gid: inode.gid, mtimeSec: inode.mtimeSec };
  if (inode.kind === "file") {
    out.push({
      ...base,
      kind: "file",
      sizeBytes: inode.sizeBytes,
      content: () => reader.content(inode),
    });
  } else if (inode.kind === "symlink") {
    out.push({ ...base, kind: "symlink", linkTarget: await reader.symlinkTarget(inode) });
  } else if (inode.kind === "dir") {
    out.push({ ...base, kind: "dir" });
    const entries = (await reader.readDir(inode)).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      await walkImage(
        reader,
        await reader.inode(e.ino),
        rel === "" ? e.name : `${rel}/${e.name}`,
        out,
      );
    }
  }
  // Device nodes, FIFOs and sockets are not copied (as BuildKit).
}

async function globInImage(reader: Ext4Reader, pattern: string): Promise<string[]> {
  let current = [""];
  for (const part of pattern.split("/").filter((p) => p !== "")) {
    const next: string[] = [];
    const glob = /[*?[]/.test(part) ? compilePathGlob(part) : undefined;
    for (const dir of current) {
      if (!glob) {
        next.push(`${dir}/${part}`);
        continue;
      }
      const { inode } = await resolveInImage(reader, dir);
      if (inode?.kind !== "dir") continue;
      for (const e of (await reader.readDir(inode)).sort((a, b) => (a.name < b.name ? -1 : 1)))
        if (glob.test(e.name)) next.push(`${dir}/${e.name}`);
    }
    current = next;
  }
  const out: string[] = [];
  for (const p of current) if ((await resolveInImage(reader, p, false)).inode) out.push(p);
  return out;
}
