import { ErrImage } from "../errors.js";

/**
 * A layer entry's name as a clean path relative to the rootfs root ("" is the root itself):
 * `./` prefixes and empty or `.` components are dropped. Absolute names and any `..` component
 * are refused outright, as are NUL and newlines (no real image needs them, and they would
 * corrupt the debugfs script that fixes up ownership).
 */
export function cleanEntryPath(name: string, layer: string): string {
  if (/[\0\n\r]/.test(name)) throw unsafe(layer, name, "contains NUL or a line break");
  if (name.startsWith("/")) throw unsafe(layer, name, "is an absolute path");
  const parts: string[] = [];
  for (const part of name.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") throw unsafe(layer, name, "contains '..'");
    parts.push(part);
  }
  return parts.join("/");
}

export function unsafe(layer: string, name: string, why: string): ErrImage {
  return new ErrImage(`unsafe layer ${layer}: entry "${name.slice(0, 200)}" ${why}; refused`);
}

export function parentOf(rel: string): string {
  const i = rel.lastIndexOf("/");
  return i < 0 ? "" : rel.slice(0, i);
}

export function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf("/") + 1);
}

export function joinRel(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}
