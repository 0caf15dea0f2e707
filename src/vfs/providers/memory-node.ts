/** The in-memory node types behind MemoryProvider. Nodes, not paths, so hard links work. */
import type { VfsFileType, VfsStat } from "../provider.js";

export interface MemMeta {
  mode: number;
  uid: number;
  gid: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  nlink: number;
  readonly ino: number;
}

export type MemNode =
  | { readonly type: "dir"; readonly meta: MemMeta; readonly children: Map<string, MemNode> }
  | { readonly type: "file"; readonly meta: MemMeta; data: Buffer; sizeBytes: number }
  | { readonly type: "symlink"; readonly meta: MemMeta; readonly target: string }
  | { readonly type: "fifo"; readonly meta: MemMeta };

let nextIno = 1;

export function newMeta(mode: number, owner: { uid: number; gid: number }): MemMeta {
  const now = Date.now();
  return {
    mode: mode & 0o7777,
    uid: owner.uid,
    gid: owner.gid,
    atimeMs: now,
    mtimeMs: now,
    ctimeMs: now,
    nlink: 1,
    ino: nextIno++,
  };
}

export function nodeType(node: MemNode): VfsFileType {
  return node.type;
}

export function memStat(node: MemNode): VfsStat {
  const m = node.meta;
  let sizeBytes = 0;
  if (node.type === "file") sizeBytes = node.sizeBytes;
  else if (node.type === "symlink") sizeBytes = Buffer.byteLength(node.target);
  else if (node.type === "dir") sizeBytes = 4096;
  return {
    type: node.type,
    mode: m.mode,
    sizeBytes,
    nlink: node.type === "dir" ? 2 + countSubdirs(node.children) : m.nlink,
    uid: m.uid,
    gid: m.gid,
    atimeMs: m.atimeMs,
    mtimeMs: m.mtimeMs,
    ctimeMs: m.ctimeMs,
    ino: m.ino,
    fileId: `m${m.ino}`,
  };
}

function countSubdirs(children: Map<string, MemNode>): number {
  let n = 0;
  for (const child of children.values()) if (child.type === "dir") n++;
  return n;
}

export function touch(meta: MemMeta): void {
  const now = Date.now();
  meta.mtimeMs = now;
  meta.ctimeMs = now;
}

/** Grows the file's buffer geometrically so many small appends stay linear. */
export function ensureCapacity(node: Extract<MemNode, { type: "file" }>, sizeBytes: number): void {
  if (sizeBytes <= node.data.length) return;
  const grown = Buffer.alloc(
    Math.max(sizeBytes, Math.min(node.data.length * 2, sizeBytes + (64 << 20))),
  );
  node.data.copy(grown, 0, 0, node.sizeBytes);
  node.data = grown;
}
