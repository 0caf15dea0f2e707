/**
 * Node ids handed to the guest kernel, with the kernel's lookup counts. A node is a name in a
 * parent node, so a path is rebuilt by walking parents: renaming a directory moves everything
 * below it at once. Node ids are never reused, so the generation is always 0.
 */
import { FUSE_ROOT_ID } from "./fuse-constants.js";
import { Errno, VfsError } from "./errors.js";
import { childPath } from "./names.js";

interface Node {
  readonly id: bigint;
  parent: Node | undefined;
  name: string;
  lookups: bigint;
  /** False once unlinked or replaced: the kernel may still hold it but no path leads to it. */
  attached: boolean;
}

/** Bounds the path walk so a corrupted table can never loop. */
const MAX_DEPTH = 4096;

export class InodeTable {
  private readonly byId = new Map<bigint, Node>();
  private readonly byKey = new Map<string, Node>();
  private nextId = FUSE_ROOT_ID + 1n;
  private readonly root: Node = {
    id: FUSE_ROOT_ID,
    parent: undefined,
    name: "",
    lookups: 1n,
    attached: true,
  };

  constructor() {
    this.byId.set(this.root.id, this.root);
  }

  get size(): number {
    return this.byId.size;
  }

  /** The current path of an attached node; ENOENT for unknown ids, ESTALE for detached ones. */
  path(id: bigint): string {
    let node = this.byId.get(id);
    if (node === undefined) throw new VfsError(Errno.ENOENT);
    if (!node.attached) throw new VfsError(Errno.ESTALE);
    const names: string[] = [];
    for (let depth = 0; node.parent !== undefined; depth++) {
      if (depth > MAX_DEPTH) throw new VfsError(Errno.ELOOP);
      names.push(node.name);
      node = node.parent;
    }
    return names.length === 0 ? "/" : `/${names.reverse().join("/")}`;
  }

  has(id: bigint): boolean {
    return this.byId.has(id);
  }

  /** Id for `name` in `parentId`, counting one more kernel reference to it. */
  remember(parentId: bigint, name: string): bigint {
    const key = this.key(parentId, name);
    const existing = this.byKey.get(key);
    if (existing !== undefined) {
      existing.lookups += 1n;
      return existing.id;
    }
    const parent = this.byId.get(parentId);
    if (parent === undefined) throw new VfsError(Errno.ENOENT);
    const node: Node = { id: this.nextId++, parent, name, lookups: 1n, attached: true };
    this.byId.set(node.id, node);
    this.byKey.set(key, node);
    return node.id;
  }

  /** The kernel dropped `count` references (FORGET); the node goes when none are left. */
  forget(id: bigint, count: bigint): void {
    const node = this.byId.get(id);
    if (node === undefined || node === this.root) return;
    node.lookups = count >= node.lookups ? 0n : node.lookups - count;
    if (node.lookups > 0n) return;
    this.byId.delete(id);
    if (node.attached && node.parent !== undefined) {
      const key = this.key(node.parent.id, node.name);
      if (this.byKey.get(key) === node) this.byKey.delete(key);
    }
  }

  /** The name is gone (unlink, rmdir, replaced by rename): the node keeps its id, loses its path. */
  detach(parentId: bigint, name: string): void {
    const key = this.key(parentId, name);
    const node = this.byKey.get(key);
    if (node === undefined) return;
    this.byKey.delete(key);
    node.attached = false;
  }

  /** Moves a known name to a new parent/name, detaching whatever the target name held. */
  move(fromParent: bigint, fromName: string, toParent: bigint, toName: string): void {
    const toNode = this.byId.get(toParent);
    if (toNode === undefined) return;
    this.detach(toParent, toName);
    const key = this.key(fromParent, fromName);
    const node = this.byKey.get(key);
    if (node === undefined) return;
    this.byKey.delete(key);
    node.parent = toNode;
    node.name = toName;
    this.byKey.set(this.key(toParent, toName), node);
  }

  /** Swaps two names (RENAME_EXCHANGE). */
  exchange(aParent: bigint, aName: string, bParent: bigint, bName: string): void {
    const a = this.byKey.get(this.key(aParent, aName));
    const b = this.byKey.get(this.key(bParent, bName));
    const aParentNode = this.byId.get(aParent);
    const bParentNode = this.byId.get(bParent);
    if (aParentNode === undefined || bParentNode === undefined) return;
    this.byKey.delete(this.key(aParent, aName));
    this.byKey.delete(this.key(bParent, bName));
    if (a !== undefined) {
      a.parent = bParentNode;
      a.name = bName;
      this.byKey.set(this.key(bParent, bName), a);
    }
    if (b !== undefined) {
      b.parent = aParentNode;
      b.name = aName;
      this.byKey.set(this.key(aParent, aName), b);
    }
  }

  /** Path of `name` inside node `parentId`. */
  childPath(parentId: bigint, name: string): string {
    return childPath(this.path(parentId), name);
  }

  private key(parentId: bigint, name: string): string {
    return `${parentId}/${name}`;
  }
}
