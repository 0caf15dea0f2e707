/**
 * A host path a caller named for a mount or a disk, checked on what it really is: the node
 * opens it once (O_PATH | O_NOFOLLOW: nothing is read, a FIFO cannot block, a symlink put
 * there is not followed), confirms through the open descriptor that it is the checked path,
 * and returns its identity (`dev:ino`). The supervisor opens the path much later and refuses
 * anything else there (src/vfs host-dir, src/vmm launch-descriptors): a swap for a symlink
 * between the node's check and that open is caught where the file is used.
 */
import { closeSync, constants, fstatSync, openSync, readlinkSync, realpathSync } from "node:fs";
import { ErrInvalidConfig } from "../errors.js";
import { fdIdentity } from "../util/index.js";
import { underRoots, type HostPathRoots } from "./node-options.js";

/** Linux O_PATH (not exported by Node's fs.constants). */
const O_PATH = 0o10000000;

export type CheckedKind = "file" | "file or directory";

/**
 * `path` is what `onNode` returned: symlinks already resolved where roots are set; under
 * "any" (the owner's own --single plan) they are resolved here.
 */
export function checkedIdentity(
  field: string,
  path: string,
  roots: HostPathRoots,
  kind: CheckedKind,
): string {
  const fail = (why: string): never => {
    throw new ErrInvalidConfig(`${field}: ${JSON.stringify(path)} ${why}`);
  };
  let real = path;
  if (roots === "any") {
    try {
      real = realpathSync(path);
    } catch {
      return fail("does not exist");
    }
  }
  let fd: number;
  try {
    fd = openSync(real, O_PATH | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return fail(code === "ENOENT" ? "does not exist" : `cannot be opened (${code ?? "error"})`);
  }
  try {
    // A parent swapped for a symlink between the resolution and the open shows here.
    const opened = readlinkSync(`/proc/self/fd/${fd}`);
    if (opened !== real || (roots !== "any" && !underRoots(opened, roots)))
      fail("changed while it was checked");
    const stat = fstatSync(fd);
    if (!(stat.isFile() || (kind === "file or directory" && stat.isDirectory())))
      fail(kind === "file" ? "is not a regular file" : "is not a directory or regular file");
    return fdIdentity(fd);
  } finally {
    closeSync(fd);
  }
}
