import { execFileSync } from "node:child_process";

export interface Ext4Inode {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  links: number;
  inode: number;
  sizeBytes: number;
}

function debugfs(image: string, request: string): string {
  return execFileSync("debugfs", ["-R", request, image], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** `stat` of a path inside an ext4 image, without mounting it. Undefined when absent. */
export function statIn(image: string, path: string): Ext4Inode | undefined {
  const out = debugfs(image, `stat "${path}"`);
  const m = /Inode: (\d+)\s+Type: (.+?)\s+Mode:\s+(\d+)/.exec(out);
  const u = /User:\s+(\d+)\s+Group:\s+(\d+)/.exec(out);
  const l = /Links: (\d+)/.exec(out);
  const size = /Size: (\d+)/.exec(out);
  if (!m || !u || !l) return undefined;
  return {
    inode: Number(m[1]),
    type: m[2] ?? "",
    mode: Number.parseInt(m[3] ?? "0", 8),
    uid: Number(u[1]),
    gid: Number(u[2]),
    links: Number(l[1]),
    sizeBytes: Number(size?.[1] ?? 0),
  };
}

export function catIn(image: string, path: string): string {
  return debugfs(image, `cat "${path}"`);
}

export function readlinkIn(image: string, path: string): string {
  const out = debugfs(image, `stat "${path}"`);
  return /Fast link dest: "(.*)"/.exec(out)?.[1] ?? "";
}

export function listIn(image: string, dir: string): string[] {
  return debugfs(image, `ls -p "${dir}"`)
    .split("\n")
    .map((l) => l.split("/")[5] ?? "")
    .filter((n) => n !== "" && n !== "." && n !== "..");
}

export function xattrIn(image: string, path: string): string {
  return debugfs(image, `ea_list "${path}"`);
}
