/** Name and path rules shared by the server and every provider. */
import { NAME_MAX_BYTES } from "./fuse-constants.js";
import { Errno, VfsError } from "./errors.js";

/** Throws EINVAL (ENAMETOOLONG for long names) unless `name` is one plain path component. */
export function checkName(name: string): string {
  if (name.length === 0 || name === "." || name === "..") throw new VfsError(Errno.EINVAL);
  if (name.includes("/") || name.includes("\0")) throw new VfsError(Errno.EINVAL);
  if (Buffer.byteLength(name) > NAME_MAX_BYTES) throw new VfsError(Errno.ENAMETOOLONG);
  return name;
}

export function childPath(parent: string, name: string): string {
  return parent === "/" ? `/${name}` : `${parent}/${name}`;
}

/** "/a/b" → ["a", "b"], checking every component; "/" → []. */
export function splitPath(path: string): string[] {
  if (!path.startsWith("/")) throw new VfsError(Errno.EINVAL);
  if (path === "/") return [];
  return path.slice(1).split("/").map(checkName);
}

/** Parent path and last name of a non-root path. */
export function splitParent(path: string): { parent: string; name: string } {
  const parts = splitPath(path);
  const name = parts.pop();
  if (name === undefined) throw new VfsError(Errno.EINVAL);
  return { parent: parts.length === 0 ? "/" : `/${parts.join("/")}`, name };
}

/** True when `path` is `base` or inside it. */
export function isWithin(path: string, base: string): boolean {
  if (base === "/") return true;
  return path === base || path.startsWith(`${base}/`);
}
