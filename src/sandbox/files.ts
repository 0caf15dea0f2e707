/**
 * The file methods of a VM sandbox: mounted paths served by the host provider, the rest by the
 * guest agent.
 */
import { posix } from "node:path";
import { Readable } from "node:stream";
import type { GuestAgent, StatInfo } from "../channel/index.js";
import { ErrInvalidConfig } from "../errors.js";
import { NeedsAgent, type MountFiles } from "./mount-files.js";

import type {
  FileData,
  FileInfo,
  MkdirOptions,
  RemoveOptions,
  StatOptions,
  WriteFileOptions,
} from "./api.js";

export type { FileInfo };

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

function toFileInfo(stat: StatInfo): FileInfo {
  const type = stat.mode & S_IFMT;
  return {
    name: stat.name,
    sizeBytes: stat.sizeBytes,
    mode: stat.mode,
    isDir: type === S_IFDIR,
    isSymlink: type === S_IFLNK,
    uid: stat.uid,
    gid: stat.gid,
    mtime: new Date(stat.mtimeMs),
    ...(stat.linkTarget !== undefined ? { linkTarget: stat.linkTarget } : {}),
  };
}

/** Guest paths are absolute; `..` is resolved here so the request names one clear path. */
function guestPath(path: string): string {
  if (typeof path !== "string" || !path.startsWith("/") || path.includes("\0")) {
    throw new ErrInvalidConfig(`guest path must be absolute with no NUL: ${JSON.stringify(path)}`);
  }
  return posix.normalize(path);
}

/**
 * File operations on any guest path: paths under a mount are served by the host provider
 * directly (see mount-files.ts), every other path through the guest agent.
 */
export class SandboxFiles {
  constructor(
    private readonly agent: GuestAgent,
    private readonly ensureRunning: () => void,
    private readonly mounts: () => MountFiles | undefined = () => undefined,
  ) {}

  /** The mount serving `path`, if any; otherwise the agent does. */
  private mounted(path: string): MountFiles | undefined {
    const mounts = this.mounts();
    return mounts?.serves(path) ? mounts : undefined;
  }

  /** Runs `direct` on the mount, or `viaAgent` when no mount serves the path or a symlink is in the way. */
  private async route<T>(
    path: string,
    direct: (mounts: MountFiles) => Promise<T>,
    viaAgent: () => Promise<T>,
  ): Promise<T> {
    const mounts = this.mounted(path);
    if (mounts === undefined) return viaAgent();
    try {
      return await direct(mounts);
    } catch (err) {
      if (err instanceof NeedsAgent) return viaAgent();
      throw err;
    }
  }

  async writeFile(path: string, data: FileData, options: WriteFileOptions = {}): Promise<void> {
    this.ensureRunning();
    const body =
      typeof data === "string"
        ? Buffer.from(data)
        : data instanceof Uint8Array
          ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
          : data;
    const target = guestPath(path);
    await this.route(
      target,
      (mounts) => mounts.writeFile(target, body, options),
      () => this.agent.writeFile({ path: target, ...options }, body),
    );
  }

  /** Streams a guest file; errors (missing file, not a regular file) arrive as stream errors. */
  readFileStream(path: string): Readable {
    this.ensureRunning();
    const target = guestPath(path);
    const viaAgent = (): Readable => this.agent.readFile(target);
    return this.mounted(target)?.readFileStream(target, viaAgent) ?? viaAgent();
  }

  async readFile(path: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.readFileStream(path)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async list(path: string): Promise<FileInfo[]> {
    this.ensureRunning();
    const target = guestPath(path);
    return this.route(
      target,
      (mounts) => mounts.list(target),
      async () => (await this.agent.listFiles(target)).map(toFileInfo),
    );
  }

  /** Metadata of one path; symlinks are followed unless `followSymlinks` is false. */
  async stat(path: string, options: StatOptions = {}): Promise<FileInfo> {
    this.ensureRunning();
    const target = guestPath(path);
    const follow = options.followSymlinks !== false;
    return this.route(
      target,
      (mounts) => mounts.stat(target, follow),
      async () => toFileInfo(await this.agent.stat(target, { follow })),
    );
  }

  /** `mkdir -p`: parents are created; an existing directory is fine. */
  async mkdir(path: string, options: MkdirOptions = {}): Promise<void> {
    this.ensureRunning();
    const target = guestPath(path);
    const mode = options.mode ?? 0o755;
    await this.route(
      target,
      (mounts) => mounts.mkdir(target, mode),
      () => this.agent.mkdir(target, { mode }),
    );
  }

  async remove(path: string, options: RemoveOptions = {}): Promise<void> {
    this.ensureRunning();
    const target = guestPath(path);
    const recursive = options.recursive === true;
    await this.route(
      target,
      (mounts) => mounts.remove(target, recursive),
      () => this.agent.remove(target, { recursive }),
    );
  }

  /** A no-op round trip to the agent (liveness, latency). */
  async ping(): Promise<void> {
    await this.agent.ping();
  }
}
