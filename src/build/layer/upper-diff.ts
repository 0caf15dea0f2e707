/**
 * A RUN step's layer, read from its sandbox's writable disk after the VM stopped. The guest's
 * root is an overlay whose upper directory (`/upper` on that disk) holds exactly what the step
 * changed, in overlayfs's own format: a character device 0:0 is a deletion (an OCI whiteout),
 * `trusted.overlay.opaque=y` marks a directory that replaces the lower one (an opaque
 * directory), other `trusted.overlay.*` attributes are overlayfs bookkeeping. Hard links are
 * inodes with several names. Everything else (owner, mode with setuid bits, xattrs, device
 * numbers) is copied as the guest's kernel wrote it.
 *
 * What the sandbox itself puts into the root is not the step's work and is left out: mount
 * points (/proc, /sys, /dev, /tmp, /run, the step's secret and cache mounts), the files the
 * guest agent manages (/etc/hosts, /etc/hostname, /etc/resolv.conf), and in intercept mode the
 * wheellock CA (its own file, and its copy appended to the system CA bundles, which is cut
 * out again; a bundle left as it was drops out of the layer).
 */
import { ErrBuild } from "../../errors.js";
import type { Ext4Inode, Ext4Reader } from "../ext4/reader.js";
import type { Xattr } from "../ext4/xattr.js";
import type { LayerEntry } from "./entry.js";

export interface UpperDiffOptions {
  upper: Ext4Reader;
  /** The root disk the step ran on (the overlay's lower layer). */
  lower: Ext4Reader;
  /** Relative paths the sandbox owns: left out with everything below them. */
  excluded: ReadonlySet<string>;
  /** Intercept mode: the CA PEM the guest appended to `caBundles`. */
  caPem?: string;
  caBundles: readonly string[];
  /** Timestamps later than this become this (reproducible layers). */
  mtimeClampSec: number;
  what: string;
}

const OVERLAY_PREFIX = "trusted.overlay.";
/** overlayfs bookkeeping that means nothing in a layer. */
const OVERLAY_IGNORED = new Set(["origin", "impure", "nlink", "upper", "uuid"]);
const MAX_ENTRIES = 5_000_000;
const MAX_BUNDLE_BYTES = 16 * 1024 * 1024;

export async function diffUpper(opts: UpperDiffOptions): Promise<LayerEntry[]> {
  const { upper } = opts;
  const top = await upper.lookup("upper");
  if (!top) return [];
  if (top.kind !== "dir") upper.fail("/upper is not a directory");
  const out: LayerEntry[] = [];
  const seenDirs = new Set<number>();
  const fail = (why: string): never => {
    throw new ErrBuild(`${opts.what}: ${why}`);
  };

  /** Emits the subtree below `dir`; returns whether it emitted anything or left a stub out. */
  const walk = async (dir: Ext4Inode, rel: string): Promise<{ emitted: number; stubs: number }> => {
    if (seenDirs.has(dir.ino)) fail("the writable layer has a directory cycle");
    seenDirs.add(dir.ino);
    let emitted = 0;
    let stubs = 0;
    for (const entry of await upper.readDir(dir)) {
      const path = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (opts.excluded.has(path)) {
        stubs++;
        continue;
      }
      if (out.length > MAX_ENTRIES) fail("the writable layer has too many entries");
      const inode = await upper.inode(entry.ino);
      const before = out.length;
      await emit(inode, path);
      const added = out.length - before;
      if (inode.kind === "dir" && added > 0 && out[before]?.kind === "dir") {
        const sub = await walk(inode, path);
        // A directory that only held a mount point or a managed file, all left out, was made
        // for the sandbox (or only touched by it): it is not part of the layer.
        if (sub.emitted === 0 && sub.stubs > 0 && out[before + 1]?.kind !== "opaque") {
          out.splice(before, added);
          stubs++;
          continue;
        }
      }
      emitted += out.length - before;
    }
    return { emitted, stubs };
  };

  const emit = async (inode: Ext4Inode, path: string): Promise<void> => {
    const base = {
      path,
      mode: inode.mode,
      uid: inode.uid,
      gid: inode.gid,
      mtimeSec: Math.min(inode.mtimeSec, opts.mtimeClampSec),
    };
    if (inode.kind === "char" && inode.devMajor === 0 && inode.devMinor === 0) {
      out.push({ ...base, kind: "whiteout", mode: 0, uid: 0, gid: 0 });
      return;
    }
    const { xattrs, opaque } = layerXattrs(await upper.xattrs(inode), path, fail);
    const extra = xattrs.length > 0 ? { xattrs } : {};
    const links = inode.links > 1 ? { hardlinkKey: `ino:${inode.ino}` } : {};
    switch (inode.kind) {
      case "dir":
        out.push({ ...base, kind: "dir", ...extra });
        if (opaque) out.push({ ...base, kind: "opaque", mode: 0, uid: 0, gid: 0 });
        return;
      case "file": {
        const bundle = await caBundleContent(inode, path);
        if (bundle === null) return;
        out.push({
          ...base,
          kind: "file",
          ...extra,
          ...(bundle === undefined ? links : {}),
          sizeBytes: bundle?.length ?? inode.sizeBytes,
          content: bundle === undefined ? () => upper.content(inode) : () => [bundle],
        });
        return;
      }
      case "symlink":
        out.push({
          ...base,
          kind: "symlink",
          mode: 0o777,
          linkTarget: await upper.symlinkTarget(inode),
          ...extra,
          ...links,
        });
        return;
      case "char":
      case "block":
      case "fifo":
        out.push({
          ...base,
          kind: inode.kind,
          devMajor: inode.devMajor,
          devMinor: inode.devMinor,
          ...extra,
        });
        return;
      case "socket":
        // Sockets mean nothing outside a running system (Docker drops them too).
        return;
    }
  };

  /**
   * For a system CA bundle the guest appended wheellock's CA to: the bundle without it, or
   * null when that is what the lower layer has (nothing changed). Undefined: not a bundle.
   */
  const caBundleContent = async (
    inode: Ext4Inode,
    path: string,
  ): Promise<Buffer | null | undefined> => {
    if (opts.caPem === undefined || !opts.caBundles.includes(path)) return undefined;
    if (inode.sizeBytes > MAX_BUNDLE_BYTES) return undefined;
    const text = (await upper.readAll(inode, MAX_BUNDLE_BYTES)).toString("latin1");
    const stripped = text.split(opts.caPem).join("");
    if (stripped === text) return undefined;
    const lowerInode = await opts.lower.lookup(path);
    if (lowerInode?.kind === "file" && lowerInode.sizeBytes <= MAX_BUNDLE_BYTES) {
      const was = (await opts.lower.readAll(lowerInode, MAX_BUNDLE_BYTES)).toString("latin1");
      // The guest adds a newline before the CA when the bundle lacked a final one.
      if (stripped === was || stripped === `${was}\n`) return null;
    }
    return Buffer.from(stripped, "latin1");
  };

  await walk(top, "");
  return out;
}

/** The xattrs a layer keeps, and whether overlayfs marked the directory opaque. */
function layerXattrs(
  all: Xattr[],
  path: string,
  fail: (why: string) => never,
): { xattrs: Xattr[]; opaque: boolean } {
  const xattrs: Xattr[] = [];
  let opaque = false;
  for (const x of all) {
    if (!x.name.startsWith(OVERLAY_PREFIX)) {
      // system.data is ext4's inline-data bookkeeping, not a user attribute.
      if (x.name !== "system.data") xattrs.push(x);
      continue;
    }
    const key = x.name.slice(OVERLAY_PREFIX.length);
    if (key === "opaque") opaque = x.value.toString("latin1") === "y";
    else if (!OVERLAY_IGNORED.has(key))
      fail(`${path}: overlayfs attribute ${x.name} is not supported (redirect_dir or metacopy?)`);
  }
  return { xattrs, opaque };
}
