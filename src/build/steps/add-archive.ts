/**
 * `ADD archive.tar[.gz|.bz2|.xz] /dir/`: a local tar archive is unpacked into the destination.
 * Recognised by content, as Docker does. Entries are rooted (no `..`, leading `/` dropped);
 * file contents go to numbered scratch files, never to a path the archive names, and the
 * resulting layer passes the same checks as any other (no writes through symlinks). What it
 * unpacks to is bounded like a pulled layer (src/image layer-limits: a ratio of the archive's
 * size, at least a floor, never more than the free disk), so a few megabytes of compressed
 * zeros in the context cannot fill the host's disk.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, open, stat } from "node:fs/promises";
import { join, posix } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { extract } from "tar-stream";
import { ErrBuild, ErrImage } from "../../errors.js";
import {
  DEFAULT_LAYER_LIMITS,
  DecompressedBytesCap,
  freeBytes,
  layerBudget,
  type LayerLimits,
} from "../../image/index.js";
import { findExecutable } from "../../util/index.js";
import type { CopyFile, CopyItem } from "./copy-entries.js";

type Compression = "none" | "gzip" | "bzip2" | "xz";

function compressionOf(head: Buffer): Compression | undefined {
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.subarray(0, 3).toString("latin1") === "BZh") return "bzip2";
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return "xz";
  return undefined;
}

/** The archive's tar bytes; `stop` ends the reading (and a decompressor process) early. */
interface Decompressed {
  stream: Readable;
  stop: () => void;
}

function decompressed(path: string, c: Compression): Decompressed {
  const source = createReadStream(path);
  if (c === "none") return { stream: source, stop: () => source.destroy() };
  if (c === "gzip") {
    const gunzip = source.pipe(createGunzip());
    source.on("error", (e) => gunzip.destroy(e));
    return { stream: gunzip, stop: () => (source.destroy(), gunzip.destroy()) };
  }
  const tool = findExecutable(c);
  if (!tool) {
    source.destroy();
    throw new ErrBuild(`ADD ${posix.basename(path)}: ${c} is needed to unpack it`);
  }
  const child: ChildProcess = spawn(tool, ["-dc"], { stdio: ["pipe", "pipe", "ignore"] });
  const stdin = child.stdin as NonNullable<ChildProcess["stdin"]>;
  const stdout = child.stdout as Readable;
  // A reader that gives up closes the pipe: the writes that follow fail with EPIPE.
  stdin.on("error", () => undefined);
  source.on("error", (e) => stdout.destroy(e));
  child.on("exit", (code, signal) => {
    if (code !== 0 && signal === null)
      stdout.destroy(new Error(`${c} exited with code ${String(code)}: not a valid archive`));
  });
  source.pipe(stdin);
  return {
    stream: stdout,
    stop: () => {
      source.destroy();
      stdout.destroy();
      child.kill("SIGKILL");
    },
  };
}

/** How the file is compressed if it is a tar archive (looked at by content); else undefined. */
export async function archiveKind(path: string): Promise<Compression | undefined> {
  const fh = await open(path, "r");
  const head = Buffer.alloc(512);
  try {
    await fh.read(head, 0, 512, 0);
  } finally {
    await fh.close();
  }
  const c = compressionOf(head) ?? "none";
  let first = head;
  if (c !== "none") {
    const chunks: Buffer[] = [];
    let n = 0;
    const d = decompressed(path, c);
    try {
      for await (const chunk of d.stream) {
        chunks.push(chunk as Buffer);
        n += (chunk as Buffer).length;
        if (n >= 512) break;
      }
    } catch {
      return undefined;
    } finally {
      d.stop();
    }
    first = Buffer.concat(chunks);
  }
  return first.subarray(257, 262).toString("latin1") === "ustar" ? c : undefined;
}

function cleanName(name: string, what: string): string {
  const parts: string[] = [];
  for (const p of name.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") throw new ErrBuild(`${what}: archive entry ${name} contains '..'; refused`);
    parts.push(p);
  }
  return parts.join("/");
}

export async function unpackArchive(
  path: string,
  compression: Compression,
  scratch: string,
  what: string,
  limits: LayerLimits = DEFAULT_LAYER_LIMITS,
): Promise<CopyItem> {
  const name = posix.basename(path);
  const archiveBytes = (await stat(path)).size;
  const budget = layerBudget(archiveBytes, await freeBytes(scratch), limits);
  const cap = new DecompressedBytesCap(budget, name, archiveBytes);
  // Its own directory: one ADD may unpack several archives into the step's scratch.
  const dir = await mkdtemp(join(scratch, "archive-"));
  const files: CopyFile[] = [];
  const ex = extract();
  const input = decompressed(path, compression);
  input.stream.on("error", (e) => cap.destroy(e));
  cap.on("error", (e) => ex.destroy(e));
  input.stream.pipe(cap).pipe(ex);
  let seq = 0;
  try {
    for await (const entry of ex) {
      const h = entry.header;
      // Refused by its declared size before any of it is written.
      cap.reserve(h.size ?? 0);
      const rel = cleanName(h.name, what);
      const base = {
        rel,
        mode: (h.mode ?? 0o644) & 0o7777,
        uid: h.uid ?? 0,
        gid: h.gid ?? 0,
        mtimeSec: h.mtime ? Math.floor(h.mtime.getTime() / 1000) : 0,
      };
      if (rel === "") {
        entry.resume();
        continue;
      }
      if (h.type === "file" || h.type === "contiguous-file") {
        const tmp = join(dir, String(seq++));
        await pipeline(entry, createWriteStream(tmp, { flags: "wx", mode: 0o600 }));
        files.push({
          ...base,
          kind: "file",
          sizeBytes: h.size ?? 0,
          content: () => createReadStream(tmp),
        });
        continue;
      }
      entry.resume();
      if (h.type === "directory") files.push({ ...base, kind: "dir" });
      else if (h.type === "symlink")
        files.push({ ...base, kind: "symlink", linkTarget: h.linkname ?? "" });
      else if (h.type === "link")
        files.push({ ...base, kind: "hardlink", linkTarget: cleanName(h.linkname ?? "", what) });
      // Devices and FIFOs in an ADDed archive are skipped (they need privileges Docker has).
    }
  } catch (e) {
    if (e instanceof ErrBuild) throw e;
    // The cap's own errors: a bomb (ErrImage) or more than the free disk (ENOSPC, reported as
    // any full disk is); anything else is an archive that does not read.
    if (e instanceof ErrImage)
      throw new ErrBuild(`${what}: ${e.message.replace(/^layer /, "archive ")}`);
    if ((e as NodeJS.ErrnoException).code === "ENOSPC") throw e;
    throw new ErrBuild(`${what}: ${name} could not be unpacked: ${(e as Error).message}`);
  } finally {
    input.stop();
  }
  return { name, isDir: true, files };
}
