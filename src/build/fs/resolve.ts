/**
 * Path resolution inside an image's root filesystem (read with Ext4Reader), following
 * symlinks the way the guest kernel would but never leaving the root: an absolute target
 * restarts at the image's root, `..` stops there. Used to find where COPY writes (`/lib` may be
 * a link to `usr/lib`), what `--from` sources are, and the image's /etc/passwd.
 */
import { ErrBuild } from "../../errors.js";
import type { Ext4Inode, Ext4Reader } from "../ext4/reader.js";

const MAX_SYMLINK_HOPS = 40;

export interface Resolved {
  /** The resolved path, relative to the root ("" for the root); missing components literal. */
  rel: string;
  /** The inode at `rel`; undefined when the path (or a parent) does not exist. */
  inode?: Ext4Inode;
}

export async function resolveInImage(
  reader: Ext4Reader,
  path: string,
  followLast = true,
): Promise<Resolved> {
  let parts = path.split("/").filter((p) => p !== "" && p !== ".");
  const resolved: string[] = [];
  let cur: Ext4Inode | undefined = await reader.inode(reader.rootIno);
  let hops = 0;
  let i = 0;
  while (i < parts.length) {
    const part = parts[i] as string;
    if (part === "..") {
      resolved.pop();
      cur = await reader.lookup(resolved.join("/"));
      i++;
      continue;
    }
    const entry =
      cur?.kind === "dir" ? (await reader.readDir(cur)).find((e) => e.name === part) : undefined;
    if (!entry) {
      // Missing from here on: the rest is taken literally (`..` still cannot climb out).
      for (const rest of parts.slice(i)) {
        if (rest === "..") resolved.pop();
        else resolved.push(rest);
      }
      return { rel: resolved.join("/") };
    }
    const inode = await reader.inode(entry.ino);
    if (inode.kind === "symlink" && (i < parts.length - 1 || followLast)) {
      if (++hops > MAX_SYMLINK_HOPS)
        throw new ErrBuild(`${path}: too many levels of symbolic links`);
      const target = await reader.symlinkTarget(inode);
      if (target.startsWith("/")) {
        resolved.length = 0;
        cur = await reader.inode(reader.rootIno);
      }
      parts = [...target.split("/").filter((p) => p !== "" && p !== "."), ...parts.slice(i + 1)];
      i = 0;
      continue;
    }
    resolved.push(part);
    cur = inode;
    i++;
  }
  return cur ? { rel: resolved.join("/"), inode: cur } : { rel: resolved.join("/") };
}

/** A small file of the image (passwd, group), or undefined when it is absent. */
export async function readImageFile(reader: Ext4Reader, path: string): Promise<string | undefined> {
  const { inode } = await resolveInImage(reader, path);
  if (inode?.kind !== "file") return undefined;
  return (await reader.readAll(inode, 16 * 1024 * 1024)).toString("utf8");
}

/** `--chown=user[:group]` to ids, names looked up in the image's /etc/passwd and /etc/group. */
export async function resolveOwner(
  reader: Ext4Reader | undefined,
  spec: string,
  what: string,
): Promise<{ uid: number; gid: number }> {
  const [user = "", group] = spec.split(":");
  const idOf = async (name: string, file: string, field: number): Promise<number | undefined> => {
    if (/^\d+$/.test(name)) return Number(name);
    const text = reader ? await readImageFile(reader, file) : undefined;
    for (const line of (text ?? "").split("\n")) {
      const cols = line.split(":");
      if (cols[0] === name && cols[field] !== undefined && /^\d+$/.test(cols[field]))
        return Number(cols[field]);
    }
    return undefined;
  };
  const uid = await idOf(user, "/etc/passwd", 2);
  if (uid === undefined) throw new ErrBuild(`${what}: unknown user ${user} (not in /etc/passwd)`);
  if (group !== undefined && group !== "") {
    const gid = await idOf(group, "/etc/group", 2);
    if (gid === undefined)
      throw new ErrBuild(`${what}: unknown group ${group} (not in /etc/group)`);
    return { uid, gid };
  }
  // No group: a numeric user gets the same number, a named one its primary group.
  if (/^\d+$/.test(user)) return { uid, gid: uid };
  const gid = await idOf(user, "/etc/passwd", 3);
  return { uid, gid: gid ?? uid };
}
