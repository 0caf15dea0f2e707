/**
 * Host side of a sandbox's mounts: one FUSE server (src/vfs) behind the `wheellock.fuse`
 * virtio-serial port, serving every mount through a router keyed by guest path. The guest
 * agent mounts that one filesystem and binds each guest path to its subtree when the host
 * sends MOUNT (after a boot or a restore: sandbox/guest-apply.ts). A sandbox that may use a
 * memory snapshot has the port even without mounts (an empty server), so that every such VM
 * has the same devices.
 */
import { realpath, stat } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { basename, dirname, join } from "node:path";
import type { MountConfig } from "../config/index.js";
import { PortName } from "../channel/index.js";
import { ErrInvalidConfig, ErrVMNotRunning } from "../errors.js";
import { dataDir, makePrivateDir } from "../paths.js";
import { removeTree } from "../util/index.js";
import {
  FuseServer,
  HostDirProvider,
  DEFAULT_MEMORY_BYTES,
  MemoryProvider,
  QuotaProvider,
  ReadOnlyProvider,
  RouterProvider,
  SingleFileProvider,
  openHostOverlay,
  quotaOfSize,
  HookedProvider,
  BlobFile,
  routedFileId,
  withRenamedFileIds,
  type CopyableContents,
  type MountImage,
  type FileEventInfo,
  type FuseSessionState,
  type FileHookRule,
  type VfsCaller,
  type VfsProvider,
} from "../vfs/index.js";
import { MountWatches } from "./mount-watches.js";
import { MountFiles } from "./mount-files.js";

/** Where kept overlay upper layers go: the run dir is removed on close. */
export function keptOverlaysDir(): string {
  return join(dataDir(), "overlays");
}

/** The provider serving one mount (exported for tests of what it opens). */
export async function providerFor(
  guestPath: string,
  mount: MountConfig,
  runDir: string,
  keptUpperDirs: Record<string, string>,
  diskSizeBytes: number,
  /** Gets each memory and overlay provider: what a copy of the sandbox takes with it. */
  copyable?: Map<string, CopyableContents>,
): Promise<VfsProvider> {
  // The plan checked every field (src/config/mount-checks.ts).
  const quota = mount.quota;
  const bad = (why: string): never => {
    throw new ErrInvalidConfig(`mounts[${JSON.stringify(guestPath)}]: ${why}`);
  };
  // A file is served as a mount of its own: its parent directory's provider, narrowed to it.
  // The file's real path, so a symlink the user named is followed here, once, on the host.
  let file: string | undefined;
  if ((mount.type === "host_fs" || mount.type === "overlay") && mount.hostPath !== undefined) {
    const st = await stat(mount.hostPath).catch(() => undefined);
    if (st === undefined) return bad(`host path does not exist: ${mount.hostPath}`);
    if (st.isFile()) file = await realpath(mount.hostPath);
  }
  let provider: VfsProvider;
  if (mount.type === "memory") {
    const memory = new MemoryProvider({
      maxBytes: quota?.sizeBytes ?? DEFAULT_MEMORY_BYTES,
      ...(quota?.inodes !== undefined ? { maxInodes: quota.inodes } : {}),
    });
    copyable?.set(guestPath, memory);
    provider = memory;
  } else if (mount.type === "provider") {
    provider = mount.provider as VfsProvider;
  } else {
    const owner = mount.owner;
    // A node's check of the path (hostIdentity) holds for what is opened now: the directory
    // itself, or the file in its parent.
    const identity = mount.hostIdentity;
    const hostOptions = {
      ...(owner === undefined ? {} : { guestOwner: owner }),
      ...(identity === undefined
        ? {}
        : { expect: file === undefined ? { identity } : { identity, entry: basename(file) } }),
    };
    const hostPath = file === undefined ? (mount.hostPath as string) : dirname(file);
    if (mount.type === "overlay") {
      const keep = mount.keepUpper === true;
      if (keep) makePrivateDir(keptOverlaysDir());
      const overlay = await openHostOverlay({
        hostPath,
        upperParentDir: keep ? keptOverlaysDir() : runDir,
        keepUpper: keep,
        // Without a quota of its own, the layer may hold what the VM's own disk may.
        quota: quotaOfSize(quota?.sizeBytes ?? diskSizeBytes, quota?.inodes),
        ...hostOptions,
      });
      if (keep) keptUpperDirs[guestPath] = overlay.upperDir;
      copyable?.set(guestPath, overlay.provider);
      provider = overlay.provider;
    } else {
      provider = await HostDirProvider.open(hostPath, hostOptions);
      // The user's own directory: bounded only when asked (then its growth from now on).
      if (quota !== undefined) {
        provider = new QuotaProvider(
          provider,
          quotaOfSize(quota.sizeBytes ?? diskSizeBytes, quota.inodes),
        );
      }
    }
    if (file !== undefined) provider = new SingleFileProvider(provider, basename(file));
  }
  return mount.readonly === true ? new ReadOnlyProvider(provider) : provider;
}

/** Hooks and events for every mount (see src/vfs/hooks). */
export interface MountHooks {
  readonly fileHooks?: readonly FileHookRule[];
  readonly onFileEvent?: (event: FileEventInfo) => void;
  /** Before each guest request (FuseServerOptions.beforeRequest). */
  readonly beforeRequest?: (caller: VfsCaller) => Promise<void> | undefined;
}

/** The contents of a copy's memory and overlay mounts (see FuseMounts.importContents). */
export interface MountContents {
  /** Per guest path. */
  images: Readonly<Record<string, MountImage>>;
  /** The file bytes they point into (a BlobFile). */
  dataPath: string;
}

export class FuseMounts {
  /** The file methods for paths under these mounts, served without the guest agent. */
  readonly files: MountFiles;
  /** File ids that an import of contents changed (routed old -> new): see resumeSession. */
  private readonly renamedIds = new Map<string, string>();

  private constructor(
    private readonly listener: Server,
    private readonly pending: { socket?: Socket },
    private readonly server: FuseServer,
    readonly socketPath: string,
    readonly guestPaths: string[],
    provider: VfsProvider,
    private readonly watches: MountWatches,
    /** Guest path -> host directory of each overlay upper layer kept after close. */
    readonly keptUpperDirs: Readonly<Record<string, string>>,
    private readonly copyable: ReadonlyMap<string, CopyableContents>,
  ) {
    this.files = new MountFiles(provider, guestPaths, (path) => server.invalidate(path));
  }

  /**
   * Builds the providers and listens on `fuse.sock` in the run dir (QEMU connects to it).
   * `diskSizeBytes` (the sandbox's disk size) is the default budget of each overlay mount.
   */
  static async open(
    runDir: string,
    mounts: Readonly<Record<string, MountConfig>>,
    onError: (err: Error) => void,
    hooks: MountHooks,
    diskSizeBytes: number,
  ): Promise<FuseMounts> {
    const guestPaths = Object.keys(mounts);
    const providers = new Map<string, VfsProvider>();
    const keptUpperDirs: Record<string, string> = {};
    const copyable = new Map<string, CopyableContents>();
    try {
      for (const path of guestPaths) {
        providers.set(
          path,
          await providerFor(path, mounts[path]!, runDir, keptUpperDirs, diskSizeBytes, copyable),
        );
      }
    } catch (err) {
      await Promise.all([...providers.values()].map((p) => p.close?.()));
      // Nothing ran yet: a kept layer made so far is empty and would only be litter.
      await Promise.all(Object.values(keptUpperDirs).map((d) => removeTree(d)));
      throw err;
    }
    const provider = new HookedProvider(
      new RouterProvider(providers),
      hooks.fileHooks,
      hooks.onFileEvent,
    );
    const watches = new MountWatches(mounts, guestPaths);
    // A before-hook may decide differently on a later stat: with hooks, every stat keeps
    // reaching the host after the short default timeout.
    const hooked = (hooks.fileHooks?.length ?? 0) > 0;
    const server = new FuseServer({
      provider,
      onError,
      ...(hooks.beforeRequest ? { beforeRequest: hooks.beforeRequest } : {}),
      ...(hooked ? {} : { watchedTimeouts: (path: string) => watches.timeoutsFor(path) }),
      // The relay answers LOOKUPs from listings: with hooks every stat must reach them.
      relayListings: !hooked,
    });
    const socketPath = join(runDir, "fuse.sock");
    // QEMU connects when it starts; a restore that fails is followed by a cold boot whose
    // QEMU connects again, so the latest connection wins until `attach()`, when the VM is up.
    const pending: { socket?: Socket } = {};
    const listener = createServer((socket) => {
      pending.socket?.destroy();
      pending.socket = socket;
    });
    await new Promise<void>((resolve, reject) => {
      listener.once("error", reject);
      listener.listen(socketPath, resolve);
    });
    watches.start((path, probe) => server.invalidate(path, probe));
    return new FuseMounts(
      listener,
      pending,
      server,
      socketPath,
      guestPaths,
      provider,
      watches,
      Object.freeze(keptUpperDirs),
      copyable,
    );
  }

  /**
   * The contents of every memory and overlay mount, their file bytes written to a new file at
   * `dataPath` (call while the guest is stopped); undefined when there are none.
   */
  async exportContents(dataPath: string): Promise<MountContents | undefined> {
    if (this.copyable.size === 0) return undefined;
    const blob = await BlobFile.create(dataPath);
    const images: Record<string, MountImage> = {};
    try {
      for (const [path, provider] of this.copyable)
        images[path] = await provider.exportContents(blob);
    } finally {
      await blob.close();
    }
    return { images, dataPath };
  }

  /**
   * Fills a copy's memory and overlay mounts with its original's contents (before the copied
   * guest is served: resumeSession). `label` names the source in errors.
   */
  async importContents(contents: MountContents, label: string): Promise<void> {
    // A host directory the copy writes through an overlay of its own has no image: it starts
    // empty. An image with no memory or overlay mount to go to is refused.
    const lost = Object.keys(contents.images).filter((path) => !this.copyable.has(path));
    if (lost.length > 0)
      throw new ErrInvalidConfig(
        `${label} holds the contents of mount(s) ${lost.join(", ")} but this copy has no ` +
          "memory or overlay mount there: refused",
      );
    let blob: BlobFile;
    try {
      blob = await BlobFile.openRead(contents.dataPath);
    } catch (err) {
      throw new ErrInvalidConfig(
        `${label}: its mount contents are missing (${(err as Error).message})`,
      );
    }
    try {
      for (const [path, image] of Object.entries(contents.images)) {
        try {
          const renamed = await this.copyable.get(path)!.importContents(image, blob);
          for (const [from, to] of renamed)
            this.renamedIds.set(routedFileId(path, from), routedFileId(path, to));
        } catch (err) {
          throw new ErrInvalidConfig(
            `${label}: the contents of mount ${path} could not be restored: ${(err as Error).message}`,
          );
        }
      }
    } finally {
      await blob.close().catch(() => undefined);
    }
  }

  /**
   * Serves the connection of the QEMU that came up (call once its VM runs, before MOUNT) and
   * stops listening: nothing else may attach to the guest's filesystem.
   */
  attach(): void {
    const socket = this.pending.socket;
    if (socket === undefined) throw new ErrVMNotRunning("QEMU never connected the FUSE port");
    this.listener.close();
    this.pending.socket = undefined;
    this.server.attach(socket);
  }

  /** The guest's FUSE session, for its copies; undefined while a file is open (FuseServer). */
  exportSession(): FuseSessionState | undefined {
    return this.server.exportSession();
  }

  /** A copy of a guest whose FUSE session is mounted already: serve it on (before `attach`). */
  resumeSession(state: FuseSessionState): void {
    // Restored files have ids of their own here: the guest's node ids follow them.
    this.server.resumeSession(withRenamedFileIds(state, this.renamedIds));
  }

  get rawPort(): { name: string; socketPath: string } {
    return { name: PortName.Fuse, socketPath: this.socketPath };
  }

  /** Stops serving and releases every provider (an overlay's upper layer goes here). */
  async close(): Promise<void> {
    this.watches.close();
    this.listener.close();
    this.pending.socket?.destroy();
    await this.server.close();
  }
}
