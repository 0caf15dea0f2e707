/**
 * Hooks and events for any provider: wraps it so every operation first passes the rules, then
 * runs, then is reported. Paths here are the paths the wrapped provider is served at in the
 * guest (wrap the router of a sandbox's mounts and they are guest paths). `stat` is checked
 * against the rules but not reported: the guest kernel's cache decides how many lookups a
 * program makes, so they would flood the stream without saying what the program did.
 */
import type {
  RenameMode,
  VfsCaller,
  VfsDirEntry,
  VfsHandle,
  VfsOpenFlags,
  VfsOwner,
  VfsProvider,
  VfsSetattr,
  VfsStat,
  VfsStatfs,
} from "../provider.js";
import { HookEngine, type OpScope } from "./engine.js";
import { eventOf, failedEvent } from "./event-of.js";
import { HookedHandle } from "./hooked-handle.js";
import { compileFileHooks } from "./rules.js";
import type { FileEventInfo, FileHookRule, FileOp, FileOpInfo } from "./types.js";

type OpFields = Omit<FileOpInfo, "origin" | "uid" | "gid" | "pid">;

/** The op names of one setattr: its parts first, then `setattr` itself. */
function setattrOps(attrs: VfsSetattr): FileOp[] {
  const ops: FileOp[] = [];
  if (attrs.mode !== undefined) ops.push("chmod");
  if (attrs.uid !== undefined || attrs.gid !== undefined) ops.push("chown");
  if (attrs.sizeBytes !== undefined) ops.push("truncate");
  if (attrs.atimeMs !== undefined || attrs.mtimeMs !== undefined) ops.push("utimes");
  ops.push("setattr");
  return ops;
}

export class HookedProvider implements VfsProvider {
  readonly readOnly: boolean;
  private readonly engine: HookEngine;
  /** Set on the per-request views `forCaller` makes; undefined for SDK file calls. */
  private caller: VfsCaller | undefined = undefined;

  /** Throws ErrInvalidConfig for a bad rule. */
  constructor(
    private readonly inner: VfsProvider,
    rules: readonly FileHookRule[] | undefined,
    onEvent?: (event: FileEventInfo) => void,
  ) {
    this.readOnly = inner.readOnly;
    this.engine = new HookEngine(compileFileHooks(rules), onEvent);
  }

  /** After-callbacks skipped because too many were still running. */
  get droppedAfterHooks(): number {
    return this.engine.droppedAfter;
  }

  /**
   * A view that reports `caller` (one object per request sharing everything else through its
   * prototype: cheaper than carrying the caller through async context for every promise).
   */
  forCaller(caller: VfsCaller): VfsProvider {
    if (!this.engine.active) return this;
    const view = Object.create(this) as HookedProvider;
    view.caller = caller;
    return view;
  }

  private info(fields: OpFields): FileOpInfo {
    const caller = this.caller;
    return caller === undefined
      ? { ...fields, origin: "api" }
      : { ...fields, origin: "guest", uid: caller.uid, gid: caller.gid, pid: caller.pid };
  }

  private async run<T>(
    fields: OpFields,
    scope: OpScope,
    work: () => Promise<T>,
    report = true,
  ): Promise<T> {
    if (!this.engine.active || (!report && !this.engine.checksBefore)) return work();
    const info = this.info(fields);
    let result: T;
    try {
      if (this.engine.checksBefore) await this.engine.before(info, scope);
      result = await work();
    } catch (err) {
      if (report) this.engine.after(failedEvent(info, err), scope);
      throw err;
    }
    if (report) this.engine.after(eventOf(info, 0), scope);
    return result;
  }

  private one(op: FileOp, path: string, extra: Partial<OpFields> = {}): [OpFields, OpScope] {
    return [
      { op, path, ...extra },
      { ops: [op], paths: [path] },
    ];
  }

  stat(path: string): Promise<VfsStat> {
    return this.run(...this.one("stat", path), () => this.inner.stat(path), false);
  }

  readdir(path: string): Promise<VfsDirEntry[]> {
    return this.run(...this.one("readdir", path), () => this.inner.readdir(path));
  }

  async open(path: string, flags: VfsOpenFlags): Promise<VfsHandle> {
    // Truncating on open destroys content like a write does: write and truncate rules see it.
    const ops: FileOp[] = flags.truncate ? ["open", "truncate", "write"] : ["open"];
    const fields: OpFields = { op: "open", path };
    const handle = await this.run(fields, { ops, paths: [path] }, () =>
      this.inner.open(path, flags),
    );
    return this.engine.active ? new HookedHandle(handle, this.engine, this.info(fields)) : handle;
  }

  async create(
    path: string,
    mode: number,
    flags: VfsOpenFlags,
    owner: VfsOwner,
  ): Promise<VfsHandle> {
    const [fields, scope] = this.one("create", path, { mode });
    const handle = await this.run(fields, scope, () => this.inner.create(path, mode, flags, owner));
    return this.engine.active ? new HookedHandle(handle, this.engine, this.info(fields)) : handle;
  }

  mkdir(path: string, mode: number, owner: VfsOwner): Promise<void> {
    return this.run(...this.one("mkdir", path, { mode }), () =>
      this.inner.mkdir(path, mode, owner),
    );
  }

  mknod(path: string, type: "file" | "fifo", mode: number, owner: VfsOwner): Promise<void> {
    const ops: FileOp[] = type === "file" ? ["mknod", "create"] : ["mknod"];
    return this.run({ op: "mknod", path, mode }, { ops, paths: [path] }, () =>
      this.inner.mknod(path, type, mode, owner),
    );
  }

  unlink(path: string): Promise<void> {
    return this.run(...this.one("unlink", path), () => this.inner.unlink(path));
  }

  rmdir(path: string): Promise<void> {
    return this.run(...this.one("rmdir", path), () => this.inner.rmdir(path));
  }

  /** Rules for either name apply: moving a file out of or into a guarded tree both count. */
  rename(from: string, to: string, mode: RenameMode): Promise<void> {
    return this.run(
      { op: "rename", path: from, newPath: to },
      { ops: ["rename"], paths: [from, to] },
      () => this.inner.rename(from, to, mode),
    );
  }

  link(from: string, to: string): Promise<void> {
    return this.run(
      { op: "link", path: from, newPath: to },
      { ops: ["link"], paths: [from, to] },
      () => this.inner.link(from, to),
    );
  }

  /** The target is text the guest chose, not a path here: rules match the link's own path. */
  symlink(target: string, path: string, owner: VfsOwner): Promise<void> {
    return this.run(...this.one("symlink", path, { newPath: target }), () =>
      this.inner.symlink(target, path, owner),
    );
  }

  readlink(path: string): Promise<string> {
    return this.run(...this.one("readlink", path), () => this.inner.readlink(path));
  }

  setattr(path: string, attrs: VfsSetattr): Promise<VfsStat> {
    const ops = setattrOps(attrs);
    const fields: OpFields = {
      op: ops[0]!,
      path,
      ...(attrs.mode !== undefined ? { mode: attrs.mode } : {}),
      ...(attrs.sizeBytes !== undefined ? { size: attrs.sizeBytes } : {}),
    };
    return this.run(fields, { ops, paths: [path] }, () => this.inner.setattr(path, attrs));
  }

  statfs(path: string): Promise<VfsStatfs> {
    return this.inner.statfs(path);
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}
