/**
 * `ADD archive.tar[.gz|.bz2|.xz] /dir/`: a local tar archive is unpacked into the destination.
 * Recognised by content, as Docker does. Entries are rooted (no `..`, leading `/` dropped);
 * file contents go to numbered scratch files, never to a path the archive names, and the
 * resulting layer passes the same checks as any other (no writes through symlinks).
 */
import { spawn } from "node:child_process";
import { createReadStream, createWriteStream } from "node:fs";
import { open } from "node:fs/promises";
import { join, posix } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { extract } from "tar-stream";
import { ErrBuild } from "../../errors.js";
import { findExecutable } from "../../util/index.js";
import type { CopyFile, CopyItem } from "./copy-entries.js";

type Compression = "none" | "gzip" | "bzip2" | "xz";

function compressionOf(head: Buffer): Compression | undefined {
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.subarray(0, 3).toString("latin1") === "BZh") return "bzip2";
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return "xz";
  return undefined;
}

function decompressed(path: string, c: Compression): Readable {
  const source = createReadStream(path);
  if (c === "none") return source;
  if (c === "gzip") return source.pipe(createGunzip());
  const tool = findExecutable(c);
  if (!tool) throw new ErrBuild(`ADD ${posix.basename(path)}: ${c} is needed to unpack it`);
  const child = spawn(tool, ["-dc"], { stdio: ["pipe", "pipe", "ignore"] });
  source.pipe(child.stdin);
  return child.stdout;
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
    try {
      for await (const chunk of decompressed(path, c)) {
        chunks.push(chunk as Buffer);
        n += (chunk as Buffer).length;
        if (n >= 512) break;
      }
    } catch {
      return undefined;
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
): Promise<CopyItem> {
  const files: CopyFile[] = [];
  const ex = extract();
  const input = decompressed(path, compression);
  input.on("error", (e) => ex.destroy(e));
  input.pipe(ex);
  let seq = 0;
  for await (const entry of ex) {
    const h = entry.header;
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
      const tmp = join(scratch, `archive-${seq++}`);
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
  return { name: posix.basename(path), isDir: true, files };
}
