/**
 * One entry of a layer the builder writes, whatever produced it (a RUN step's writable disk, a
 * COPY from the context or from another stage, an ADD archive). The tar writer turns these
 * into OCI layer entries: `whiteout` becomes `.wh.NAME`, `opaque` becomes `DIR/.wh..wh..opq`.
 */
import type { Xattr } from "../ext4/xattr.js";

export type LayerEntryKind =
  "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo" | "whiteout" | "opaque";

export interface LayerEntry {
  /** Clean relative path ("usr/bin/x"), never empty, no `.` or `..` components. */
  path: string;
  kind: LayerEntryKind;
  /** Permission bits with setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  mtimeSec: number;
  /** Files only: the exact number of bytes `content` yields. */
  sizeBytes?: number;
  /** Symlink target, or the path (relative to the root) a hard link points at. */
  linkTarget?: string;
  devMajor?: number;
  devMinor?: number;
  xattrs?: readonly Xattr[];
  /**
   * Files (and symlinks) that are one inode under several names share a key: the first of
   * them in layer order is written whole, the others as hard links to it.
   */
  hardlinkKey?: string;
  /** Files only: opened once, when the entry is written. */
  content?: () => AsyncIterable<Buffer> | Iterable<Buffer>;
}

/**
 * Layer order: every directory before what is in it, and in a directory its opaque marker,
 * then its whiteouts, then the rest by name (depth first). Deterministic, and the order OCI
 * asks for (whiteouts before their siblings), so any applier reads the layer the same way.
 * An opaque entry's path is its directory; a whiteout's is the path it deletes.
 */
export function orderLayerEntries(entries: readonly LayerEntry[]): LayerEntry[] {
  interface Node {
    self?: LayerEntry;
    opaque?: LayerEntry;
    whiteouts: LayerEntry[];
    children: Map<string, Node>;
  }
  const newNode = (): Node => ({ whiteouts: [], children: new Map() });
  const root = newNode();
  const nodeAt = (path: string): Node => {
    let cur = root;
    for (const part of path.split("/")) {
      let next = cur.children.get(part);
      if (!next) cur.children.set(part, (next = newNode()));
      cur = next;
    }
    return cur;
  };
  for (const e of entries) {
    if (e.kind === "opaque") nodeAt(e.path).opaque = e;
    else if (e.kind === "whiteout") {
      const slash = e.path.lastIndexOf("/");
      (slash < 0 ? root : nodeAt(e.path.slice(0, slash))).whiteouts.push(e);
    } else nodeAt(e.path).self = e;
  }
  const out: LayerEntry[] = [];
  const byPath = (a: LayerEntry, b: LayerEntry): number => (a.path < b.path ? -1 : 1);
  const visit = (node: Node): void => {
    if (node.opaque) out.push(node.opaque);
    out.push(...node.whiteouts.sort(byPath));
    for (const name of [...node.children.keys()].sort()) {
      const child = node.children.get(name) as Node;
      if (child.self) out.push(child.self);
      visit(child);
    }
  };
  visit(root);
  return out;
}
