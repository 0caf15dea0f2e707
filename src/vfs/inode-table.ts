/**
 * Node ids handed to the guest kernel, with the kernel's lookup counts. A node is known by
 * its names (parent node + name), so a path is rebuilt by walking parents and renaming a
 * directory moves everything below it at once. Names whose stat carries the same `fileId`
 * are hard links of one file and share one node id, so the kernel sees one inode (one
 * attribute cache, one link count). Node ids are never reused, so the generation is always 0.
 */
import { FUSE_ROOT_ID } from "./fuse-constants.js";
import { Errno, VfsError } from "./errors.js";
import { childPath } from "./names.js";
import type { StatSignature } from "./stat-signature.js";

interface Link {
  parent: Node;
  name: string;
}

interface Node {
  readonly id: bigint;
  /** The names that lead here; the first one is used to build the path. Empty: unlinked. */
  readonly links: Link[];
  lookups: bigint;
  readonly fileId: string | undefined;
  /** What the guest was last told about the node's attributes (see fuse-notify.ts). */
  told?: StatSignature;
}

/**
 * The table as plain data (ids as decimal strings): what a copy of the guest (a fork or a
 * checkpoint) needs so that the node ids its kernel holds keep meaning the same names.
 */
export interface InodeTableState {
  nextId: string;
  nodes: {
    id: string;
    lookups: string;
    fileId?: string;
    links: [parent: string, name: string][];
  }[];
}

/** Bounds the path walk so a corrupted table can never loop. */
const MAX_DEPTH = 4096;

export class InodeTable {
  private readonly byId = new Map<bigint, Node>();
  private readonly byKey = new Map<string, Node>();
  private readonly byFileId = new Map<string, Node>();
  private nextId = FUSE_ROOT_ID + 1n;
  private readonly root: Node = { id: FUSE_ROOT_ID, links: [], lookups: 1n, fileId: undefined };

  constructor() {
    this.byId.set(this.root.id, this.root);
  }

  get size(): number {
    return this.byId.size;
  }

  /** Every node but the root, with its names and lookup count (see InodeTableState). */
  exportState(): InodeTableState {
    const nodes: InodeTableState["nodes"] = [];
    for (const node of this.byId.values()) {
      if (node === this.root) continue;
      nodes.push({
        id: node.id.toString(),
        lookups: node.lookups.toString(),
        ...(node.fileId === undefined ? {} : { fileId: node.fileId }),
        links: node.links.map((l): [string, string] => [l.parent.id.toString(), l.name]),
      });
    }
    return { nextId: this.nextId.toString(), nodes };
  }

  /**
   * Replaces an unused table with `state` (a copy's server, before the copied guest sends
   * anything). Links to ids the state does not hold are dropped: such a name is looked up
   * again by the guest and gets a new id.
   */
  importState(state: InodeTableState): void {
    if (this.byId.size !== 1) throw new Error("InodeTable.importState: the table is in use");
    for (const n of state.nodes) {
      const fileId = n.fileId;
      const node: Node = { id: BigInt(n.id), links: [], lookups: BigInt(n.lookups), fileId };
      if (node.id === FUSE_ROOT_ID) continue;
      this.byId.set(node.id, node);
      if (fileId !== undefined) this.byFileId.set(fileId, node);
    }
    for (const n of state.nodes) {
      const node = this.byId.get(BigInt(n.id));
      if (node === undefined || node === this.root) continue;
      for (const [parentId, name] of n.links) {
        const parent = this.byId.get(BigInt(parentId));
        if (parent === undefined) continue;
        node.links.push({ parent, name });
        this.byKey.set(this.key(parent.id, name), node);
      }
    }
    const next = BigInt(state.nextId);
    if (next > this.nextId) this.nextId = next;
  }

  /** The current path of a linked node; ENOENT for unknown ids, ESTALE for unlinked ones. */
  path(id: bigint): string {
    let node = this.byId.get(id);
    if (node === undefined) throw new VfsError(Errno.ENOENT);
    const names: string[] = [];
    for (let depth = 0; node !== this.root; depth++) {
      const link: Link | undefined = node.links[0];
      if (link === undefined) throw new VfsError(Errno.ESTALE);
      if (depth > MAX_DEPTH) throw new VfsError(Errno.ELOOP);
      names.push(link.name);
      node = link.parent;
    }
    return names.length === 0 ? "/" : `/${names.reverse().join("/")}`;
  }

  /** True while some name leads to the node (false once unlinked, or unknown). */
  linked(id: bigint): boolean {
    const node = this.byId.get(id);
    return node !== undefined && (node === this.root || node.links.length > 0);
  }

  /**
   * Id for `name` in `parentId`, counting one more kernel reference to it. `fileId` (not for
   * directories) joins the name to an existing node of the same file: a hard link.
   */
  remember(parentId: bigint, name: string, fileId?: string): bigint {
    const key = this.key(parentId, name);
    const existing = this.byKey.get(key);
    if (existing !== undefined && (fileId === undefined || existing.fileId === fileId)) {
      existing.lookups += 1n;
      return existing.id;
    }
    const parent = this.byId.get(parentId);
    if (parent === undefined) throw new VfsError(Errno.ENOENT);
    // The name now names another file (changed behind our back): drop the old binding.
    if (existing !== undefined) this.detach(parentId, name);
    const same = fileId === undefined ? undefined : this.byFileId.get(fileId);
    if (same !== undefined) {
      // The newest name goes first: it is the one most likely to still exist.
      same.links.unshift({ parent, name });
      same.lookups += 1n;
      this.byKey.set(key, same);
      return same.id;
    }
    const node: Node = { id: this.nextId++, links: [{ parent, name }], lookups: 1n, fileId };
    this.byId.set(node.id, node);
    this.byKey.set(key, node);
    if (fileId !== undefined) this.byFileId.set(fileId, node);
    return node.id;
  }

  /** The kernel dropped `count` references (FORGET); the node goes when none are left. */
  forget(id: bigint, count: bigint): void {
    const node = this.byId.get(id);
    if (node === undefined || node === this.root) return;
    node.lookups = count >= node.lookups ? 0n : node.lookups - count;
    if (node.lookups > 0n) return;
    this.byId.delete(id);
    for (const link of node.links) {
      const key = this.key(link.parent.id, link.name);
      if (this.byKey.get(key) === node) this.byKey.delete(key);
    }
    if (node.fileId !== undefined && this.byFileId.get(node.fileId) === node) {
      this.byFileId.delete(node.fileId);
    }
  }

  /** The name is gone (unlink, rmdir, replaced by rename); the node keeps its other names. */
  detach(parentId: bigint, name: string): void {
    const key = this.key(parentId, name);
    const node = this.byKey.get(key);
    if (node === undefined) return;
    this.byKey.delete(key);
    this.dropLink(node, parentId, name);
  }

  private dropLink(node: Node, parentId: bigint, name: string): Link | undefined {
    const at = node.links.findIndex((l) => l.parent.id === parentId && l.name === name);
    const [link] = at >= 0 ? node.links.splice(at, 1) : [];
    if (node.links.length === 0 && node.fileId !== undefined) {
      if (this.byFileId.get(node.fileId) === node) this.byFileId.delete(node.fileId);
    }
    return link;
  }

  /** Moves a known name to a new parent/name, detaching whatever the target name held. */
  move(fromParent: bigint, fromName: string, toParent: bigint, toName: string): void {
    const toNode = this.byId.get(toParent);
    if (toNode === undefined) return;
    const fromKey = this.key(fromParent, fromName);
    const node = this.byKey.get(fromKey);
    // rename(2) between two links of one file does nothing.
    if (node !== undefined && this.byKey.get(this.key(toParent, toName)) === node) return;
    this.detach(toParent, toName);
    if (node === undefined) return;
    this.byKey.delete(fromKey);
    const link = this.dropLink(node, fromParent, fromName);
    node.links.unshift({ parent: toNode, name: toName });
    if (link === undefined && node.fileId !== undefined) this.byFileId.set(node.fileId, node);
    this.byKey.set(this.key(toParent, toName), node);
  }

  /** Swaps two names (RENAME_EXCHANGE). */
  exchange(aParent: bigint, aName: string, bParent: bigint, bName: string): void {
    const a = this.byKey.get(this.key(aParent, aName));
    const b = this.byKey.get(this.key(bParent, bName));
    const aParentNode = this.byId.get(aParent);
    const bParentNode = this.byId.get(bParent);
    if (aParentNode === undefined || bParentNode === undefined || a === b) return;
    this.byKey.delete(this.key(aParent, aName));
    this.byKey.delete(this.key(bParent, bName));
    for (const [node, from, to] of [
      [a, { id: aParent, name: aName }, { parent: bParentNode, name: bName }],
      [b, { id: bParent, name: bName }, { parent: aParentNode, name: aName }],
    ] as const) {
      if (node === undefined) continue;
      const link = node.links.find((l) => l.parent.id === from.id && l.name === from.name);
      if (link !== undefined) {
        link.parent = to.parent;
        link.name = to.name;
      }
      this.byKey.set(this.key(to.parent.id, to.name), node);
    }
  }

  /** Records the attributes just sent to the guest for `id`. */
  told(id: bigint, signature: StatSignature): void {
    const node = this.byId.get(id);
    if (node !== undefined) node.told = signature;
  }

  /** The attributes last sent for `id`, if any. */
  lastTold(id: bigint): StatSignature | undefined {
    return this.byId.get(id)?.told;
  }

  /** The node ids the kernel holds for `path` and its parent (undefined where it holds none). */
  find(path: string): { node: bigint | undefined; parent: bigint | undefined; name: string } {
    const names = path.split("/").filter((n) => n !== "");
    let parent: Node | undefined;
    let node: Node | undefined = this.root;
    for (const name of names) {
      parent = node;
      node = parent === undefined ? undefined : this.byKey.get(this.key(parent.id, name));
    }
    return { node: node?.id, parent: parent?.id, name: names[names.length - 1] ?? "" };
  }

  /** Path of `name` inside node `parentId`. */
  childPath(parentId: bigint, name: string): string {
    return childPath(this.path(parentId), name);
  }

  private key(parentId: bigint, name: string): string {
    return `${parentId}/${name}`;
  }
}
