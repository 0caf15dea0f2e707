import { createHash } from "node:crypto";
import { spawn } from "node:child_process";
import { pipeline, Transform, type Readable } from "node:stream";
import * as zlib from "node:zlib";
import { extract, type Header } from "tar-stream";
import { ErrImage } from "../errors.js";
import { findExecutable } from "../util/index.js";
import { baseOf, cleanEntryPath, joinRel, parentOf, unsafe } from "./rootfs-path.js";
import type { DecompressedBytesCap } from "./layer-limits.js";
import type { EntryMeta, Inode, RootfsTree } from "./rootfs-tree.js";

const WHITEOUT = ".wh.";
const OPAQUE = ".wh..wh..opq";

/**
 * Decompresses by content (gzip or zstd magic, else plain tar): `docker save` archives and some
 * registries label layers loosely, and the bytes never lie. zstd uses Node's own decoder where it
 * has one (>= 22.15), else the `zstd` tool.
 */
export async function decompressLayer(source: Readable, layerName: string): Promise<Readable> {
  const first = await peek(source);
  if (first[0] === 0x1f && first[1] === 0x8b) return through(source, zlib.createGunzip());
  if (first[0] === 0x28 && first[1] === 0xb5 && first[2] === 0x2f && first[3] === 0xfd) {
    const make = (zlib as unknown as { createZstdDecompress?: () => Transform })
      .createZstdDecompress;
    if (make) return through(source, make());
    return zstdTool(source, layerName);
  }
  return source;
}

/** `source.pipe(t)`, but a failing source also fails `t` (pipe alone would leave it hanging). */
function through(source: Readable, t: Transform): Readable {
  pipeline(source, t, (err) => {
    if (err) t.destroy(err);
  });
  return t;
}

function zstdTool(source: Readable, layerName: string): Readable {
  const zstd = findExecutable("zstd");
  if (!zstd)
    throw new ErrImage(
      `layer ${layerName} is zstd-compressed: install zstd (apt-get install zstd) or use Node.js >= 22.15`,
    );
  const child = spawn(zstd, ["-dcq"], { stdio: ["pipe", "pipe", "pipe"] });
  const stdout = child.stdout;
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr = (stderr + d).slice(-500)));
  pipeline(source, child.stdin, (err) => {
    if (err) stdout.destroy(err);
  });
  child.on("error", (err) => stdout.destroy(err));
  // A reader that gives up (a refused layer) ends the process too, not just its pipe.
  stdout.once("close", () => child.kill());
  child.on("close", (code) => {
    if (code !== 0)
      stdout.destroy(
        new ErrImage(`layer ${layerName}: zstd failed (exit ${code}): ${stderr.trim()}`),
      );
  });
  return stdout;
}

/** Reads the first bytes and puts them back. */
async function peek(source: Readable): Promise<Buffer> {
  for (;;) {
    const chunk = source.read(4) as Buffer | null;
    if (chunk) {
      source.unshift(chunk);
      return chunk;
    }
    if (source.readableEnded) return Buffer.alloc(0);
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        source.off("readable", done);
        source.off("end", done);
        source.off("error", fail);
        resolve();
      };
      const fail = (e: Error): void => {
        source.off("readable", done);
        source.off("end", done);
        reject(e);
      };
      source.once("readable", done);
      source.once("end", done);
      source.once("error", fail);
    });
  }
}

/**
 * Applies one uncompressed layer tar to the tree, in archive order, and returns the sha256 of
 * the tar stream (the layer's diff ID) so the caller can check it against the image config.
 * `cap` bounds the decompressed bytes (layer-limits.ts): the stream fails when they pass it,
 * and an entry whose declared size would pass it is refused before any of it is written.
 */
export async function applyLayerTar(
  tar: Readable,
  tree: RootfsTree,
  layer: number,
  layerName: string,
  cap: DecompressedBytesCap,
): Promise<string> {
  const hash = createHash("sha256");
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  const ex = extract();
  tar.on("error", (e) => cap.destroy(e));
  cap.on("error", (e) => hasher.destroy(e));
  hasher.on("error", (e) => ex.destroy(e));
  tar.pipe(cap).pipe(hasher).pipe(ex);
  try {
    for await (const entry of ex) {
      cap.reserve(entry.header.size ?? 0);
      await applyEntry(entry.header, entry as AsyncIterable<Buffer>, tree, layer, layerName);
      entry.resume();
    }
    await tree.flush();
    // Trailing bytes after the end-of-archive blocks still count towards the diff ID.
    if (!hasher.writableFinished)
      await new Promise<void>((resolve, reject) => {
        hasher.once("finish", resolve);
        hasher.once("error", reject);
        hasher.resume();
      });
  } catch (err) {
    // Stop decompressing (and the zstd process, and the blob's file) instead of leaving the
    // rest of a refused layer paused in a pipe.
    for (const s of [tar, cap, hasher]) s.destroy();
    throw err;
  }
  return `sha256:${hash.digest("hex")}`;
}

function meta(h: Header): EntryMeta {
  return {
    uid: h.uid ?? 0,
    gid: h.gid ?? 0,
    mode: (h.mode ?? 0o644) & 0o7777,
    mtimeSec: h.mtime ? Math.floor(h.mtime.getTime() / 1000) : 0,
  };
}

/** PAX `SCHILY.xattr.*` records, as GNU tar and BuildKit write them. */
function xattrsOf(h: Header): Map<string, Buffer> | undefined {
  const pax = h.pax;
  if (!pax) return undefined;
  let out: Map<string, Buffer> | undefined;
  for (const [key, value] of Object.entries(pax as Record<string, unknown>)) {
    if (!key.startsWith("SCHILY.xattr.") || typeof value !== "string") continue;
    out ??= new Map();
    out.set(key.slice("SCHILY.xattr.".length), Buffer.from(value, "latin1"));
  }
  return out;
}

async function applyEntry(
  h: Header,
  content: AsyncIterable<Buffer>,
  tree: RootfsTree,
  layer: number,
  layerName: string,
): Promise<void> {
  const rel = cleanEntryPath(h.name, layerName);
  if (rel === "") {
    // The root directory's own entry ("./"): only its metadata applies.
    if (h.type === "directory") Object.assign(tree.nodes.get("") ?? {}, meta(h));
    return;
  }
  await tree.ensureParents(rel, layer, layerName, h.name);
  const base = baseOf(rel);
  if (base === OPAQUE) return tree.makeOpaque(parentOf(rel), layer);
  if (base.startsWith(WHITEOUT)) {
    const hidden = base.slice(WHITEOUT.length);
    if (hidden === "" || hidden === "." || hidden === "..")
      throw unsafe(layerName, h.name, "is a malformed whiteout");
    return tree.remove(joinRel(parentOf(rel), hidden));
  }
  const m = meta(h);
  let inode: Inode | undefined;
  switch (h.type) {
    case "directory":
      await tree.mkdir(rel, m, layer);
      inode = tree.nodes.get(rel);
      break;
    case "file":
    case "contiguous-file":
      inode = await tree.writeFile(rel, m, content, h.size ?? 0, layer);
      break;
    case "symlink":
      inode = await tree.symlink(rel, h.linkname ?? "", m, layer);
      break;
    case "link": {
      const target = cleanEntryPath(h.linkname ?? "", layerName);
      // The target's own path must be rooted too (no symlink parents): it is in the model.
      await tree.hardlink(rel, target, layer, layerName, h.name);
      return;
    }
    case "character-device":
    case "block-device":
    case "fifo": {
      const kind = h.type === "fifo" ? "fifo" : h.type === "block-device" ? "block" : "char";
      inode = { kind, ...m, devMajor: h.devmajor ?? 0, devMinor: h.devminor ?? 0 };
      await tree.special(rel, inode, layer);
      break;
    }
    default:
      throw unsafe(layerName, h.name, `has unsupported type ${h.type ?? "?"}`);
  }
  const xattrs = xattrsOf(h);
  if (inode && xattrs) inode.xattrs = xattrs;
}
