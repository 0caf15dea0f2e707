/**
 * A deterministic tar writer for layers: ustar headers, with a PAX record before an entry only
 * when ustar cannot say it (long or non-ASCII names, big ids or sizes, xattrs). No user or group
 * names, no atime/ctime, a fixed PAX header name: the same entries always give the same bytes.
 * xattr values go into `SCHILY.xattr.*` as raw bytes (what GNU tar, BuildKit and containerd
 * read); values that are not UTF-8 also go into libarchive's base64 `LIBARCHIVE.xattr.*`,
 * which survives readers that decode PAX records as text.
 */
import { ErrBuild } from "../../errors.js";
import type { LayerEntry } from "./entry.js";

const BLOCK = 512;
const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;
const TYPE: Record<string, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
  whiteout: "0",
  opaque: "0",
};

interface Header {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeSec: number;
  linkname: string;
  devMajor: number;
  devMinor: number;
}

function octal(buf: Buffer, off: number, len: number, value: number): void {
  buf.write(`${value.toString(8).padStart(len - 1, "0")}\0`, off, len, "ascii");
}

function ustar(h: Header, name: string, prefix: string, linkname: string): Buffer {
  const buf = Buffer.alloc(BLOCK);
  buf.write(name, 0, 100, "utf8");
  octal(buf, 100, 8, h.mode);
  octal(buf, 108, 8, Math.min(h.uid, MAX_OCTAL_7));
  octal(buf, 116, 8, Math.min(h.gid, MAX_OCTAL_7));
  octal(buf, 124, 12, Math.min(h.size, MAX_OCTAL_11));
  octal(buf, 136, 12, Math.min(Math.max(h.mtimeSec, 0), MAX_OCTAL_11));
  buf.write(" ".repeat(8), 148, 8, "ascii");
  buf.write(h.type, 156, 1, "ascii");
  buf.write(linkname, 157, 100, "utf8");
  buf.write("ustar\u000000", 257, 8, "ascii");
  octal(buf, 329, 8, h.devMajor);
  octal(buf, 337, 8, h.devMinor);
  buf.write(prefix, 345, 155, "utf8");
  let sum = 0;
  for (const b of buf) sum += b;
  buf.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
  return buf;
}

/** A ustar name/prefix split of `path`, or undefined when ustar cannot hold it. */
function splitName(path: string): { name: string; prefix: string } | undefined {
  if (!/^[\x20-\x7e]*$/.test(path)) return undefined;
  if (path.length <= 100) return { name: path, prefix: "" };
  for (let i = path.indexOf("/"); i >= 0; i = path.indexOf("/", i + 1)) {
    if (i <= 155 && path.length - i - 1 <= 100 && path.length - i - 1 > 0)
      return { name: path.slice(i + 1), prefix: path.slice(0, i) };
  }
  return undefined;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, "utf8"), value, Buffer.from("\n")]);
  // The length field counts itself.
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

const padding = (size: number): Buffer => Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);

function isUtf8(value: Buffer): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(value);
    return true;
  } catch {
    return false;
  }
}

/** The header blocks (PAX record first when needed) for one entry. */
function headerBlocks(h: Header, xattrs: LayerEntry["xattrs"]): Buffer[] {
  const records: Buffer[] = [];
  const split = splitName(h.name);
  if (!split) records.push(paxRecord("path", Buffer.from(h.name, "utf8")));
  const linkOk = /^[\x20-\x7e]*$/.test(h.linkname) && h.linkname.length <= 100;
  if (!linkOk) records.push(paxRecord("linkpath", Buffer.from(h.linkname, "utf8")));
  if (h.uid > MAX_OCTAL_7) records.push(paxRecord("uid", Buffer.from(String(h.uid))));
  if (h.gid > MAX_OCTAL_7) records.push(paxRecord("gid", Buffer.from(String(h.gid))));
  if (h.size > MAX_OCTAL_11) records.push(paxRecord("size", Buffer.from(String(h.size))));
  for (const x of [...(xattrs ?? [])].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    records.push(paxRecord(`SCHILY.xattr.${x.name}`, x.value));
    if (!isUtf8(x.value))
      records.push(
        paxRecord(
          `LIBARCHIVE.xattr.${encodeURIComponent(x.name)}`,
          Buffer.from(x.value.toString("base64")),
        ),
      );
  }
  const blocks: Buffer[] = [];
  if (records.length > 0) {
    const pax = Buffer.concat(records);
    const paxHeader: Header = {
      ...h,
      name: "PaxHeader",
      type: "x",
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: pax.length,
      linkname: "",
      devMajor: 0,
      devMinor: 0,
    };
    blocks.push(ustar(paxHeader, "PaxHeader", "", ""), pax, padding(pax.length));
  }
  const fallback = { name: h.name.slice(-100).replace(/[^\x20-\x7e]/g, "_"), prefix: "" };
  const { name, prefix } = split ?? fallback;
  blocks.push(ustar(h, name, prefix, linkOk ? h.linkname : h.linkname.slice(0, 100)));
  return blocks;
}

const WHITEOUT = ".wh.";
const OPAQUE = ".wh..wh..opq";

function tarName(e: LayerEntry): string {
  if (e.kind === "opaque") return `${e.path}/${OPAQUE}`;
  if (e.kind === "whiteout") {
    const slash = e.path.lastIndexOf("/");
    return `${e.path.slice(0, slash + 1)}${WHITEOUT}${e.path.slice(slash + 1)}`;
  }
  return e.kind === "dir" ? `${e.path}/` : e.path;
}

/**
 * The layer's tar bytes, entry by entry, in the order given (see orderLayerEntries). A file
 * whose content is not exactly its declared size (changed while the build read it) fails the
 * layer instead of producing a corrupt archive.
 */
export async function* writeLayerTar(entries: Iterable<LayerEntry>): AsyncGenerator<Buffer> {
  const firstNameOf = new Map<string, string>();
  for (const e of entries) {
    let kind = e.kind;
    let linkname = e.linkTarget ?? "";
    if (e.hardlinkKey !== undefined) {
      const first = firstNameOf.get(e.hardlinkKey);
      if (first === undefined) firstNameOf.set(e.hardlinkKey, e.path);
      else {
        kind = "hardlink";
        linkname = first;
      }
    }
    const size = kind === "file" ? (e.sizeBytes ?? 0) : 0;
    const special = kind === "whiteout" || kind === "opaque";
    const h: Header = {
      name: tarName(e),
      type: TYPE[kind] ?? "0",
      mode: special ? 0 : e.mode & 0o7777,
      uid: special ? 0 : e.uid,
      gid: special ? 0 : e.gid,
      size,
      mtimeSec: e.mtimeSec,
      linkname: kind === "symlink" || kind === "hardlink" ? linkname : "",
      devMajor: e.devMajor ?? 0,
      devMinor: e.devMinor ?? 0,
    };
    yield* headerBlocks(h, special || kind === "hardlink" ? undefined : e.xattrs);
    if (kind !== "file") continue;
    let written = 0;
    if (e.content) {
      for await (const chunk of e.content()) {
        written += chunk.length;
        if (written > size) break;
        yield chunk;
      }
    }
    if (written !== size)
      throw new ErrBuild(
        `${e.path}: expected ${size} bytes, read ${written > size ? "more" : written} (did it change during the build?)`,
      );
    yield padding(size);
  }
  yield Buffer.alloc(BLOCK * 2);
}
