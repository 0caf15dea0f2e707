import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ErrImage } from "../errors.js";
import { runTool, outputTail } from "../util/index.js";
import { findExecutable } from "../util/index.js";
import { baseOf, parentOf } from "./rootfs-path.js";
import { SPECIAL_KINDS, type Inode, type InodeKind, type RootfsTree } from "./rootfs-tree.js";

const TYPE_BITS: Record<InodeKind, number> = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  char: 0o020000,
  block: 0o060000,
  fifo: 0o010000,
};

/** debugfs's parser takes double-quoted words; a quote inside is doubled. */
const q = (rel: string): string => `"/${rel.replace(/"/g, '""')}"`;

/**
 * What mkfs.ext4 -d could not copy from the staging tree, as a debugfs script run on the image
 * afterwards: device nodes and FIFOs (nobody creates those on the host, root or not), xattrs
 * (Node has no setxattr), and, when not root, every inode's real owner and mode.
 */
export async function debugfsScript(
  tree: RootfsTree,
  asRoot: boolean,
  scratchDir: string,
): Promise<string[]> {
  const lines: string[] = [];
  let blob = 0;
  for (const { inode, paths } of tree.inodesDeepestFirst()) {
    const path = paths[0];
    if (path === undefined) continue;
    if (SPECIAL_KINDS.has(inode.kind)) {
      // mknod takes a bare name in the current directory.
      lines.push(`cd ${q(parentOf(path))}`, mknod(baseOf(path), inode), "cd /");
    }
    if (!asRoot || SPECIAL_KINDS.has(inode.kind)) {
      const full = TYPE_BITS[inode.kind] | (inode.kind === "symlink" ? 0o777 : inode.mode);
      lines.push(
        `sif ${q(path)} uid ${inode.uid}`,
        `sif ${q(path)} gid ${inode.gid}`,
        `sif ${q(path)} mode 0${full.toString(8)}`,
      );
    }
    for (const [name, value] of inode.xattrs ?? []) {
      if (!/^[\w.-]+$/.test(name)) continue;
      const file = join(scratchDir, `xattr-${blob++}`);
      await writeFile(file, value);
      lines.push(`ea_set -f "${file}" ${q(path)} ${name}`);
    }
  }
  return lines;
}

function mknod(name: string, inode: Inode): string {
  const n = `"${name.replace(/"/g, '""')}"`;
  if (inode.kind === "fifo") return `mknod ${n} p`;
  return `mknod ${n} ${inode.kind === "block" ? "b" : "c"} ${inode.devMajor ?? 0} ${inode.devMinor ?? 0}`;
}

/** Runs the script; debugfs exits 0 even when a command fails, so its stderr is the verdict. */
export async function runDebugfs(
  imagePath: string,
  lines: string[],
  scriptPath: string,
): Promise<void> {
  if (lines.length === 0) return;
  const debugfs = findExecutable("debugfs");
  if (!debugfs) throw new ErrImage("debugfs not found (package e2fsprogs); run: wheellock setup");
  await writeFile(scriptPath, `${lines.join("\n")}\n`);
  const res = await runTool([debugfs, "-w", "-f", scriptPath, imagePath]);
  const problems = res.stderr
    .split("\n")
    .filter((l) => l.trim() !== "" && !/^debugfs \d/.test(l) && !/^Allocated inode/.test(l));
  if (res.code !== 0 || problems.length > 0)
    throw new ErrImage(
      `debugfs fix-up of the image failed: ${problems.slice(0, 3).join(" | ") || outputTail(res)}`,
    );
}
