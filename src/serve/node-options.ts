/**
 * What a node accepts as a sandbox's options from the network, before planning them: plain
 * JSON (no provider mounts: a provider is code in the caller's process), and host paths that
 * are absolute — they name files on this node, and a path relative to `serve`'s working
 * directory would be a guess — and lie under a directory the node's owner opened to callers
 * (`serve --host-path DIR`). Without that, the operator token would read (through a mount, a
 * disk or a policy script) every file the `serve` user can: its SSH keys, cloud credentials,
 * the node's own key. None is open by default.
 */
import { realpathSync } from "node:fs";
import { dirname, basename, join, resolve, sep } from "node:path";
import { ErrInvalidConfig } from "../errors.js";

/** The node directories a network caller may name (already resolved); "any" for --single. */
export type HostPathRoots = readonly string[] | "any";

/** The real path of `path`, or of its nearest existing parent joined with the rest. */
function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    const parent = dirname(path);
    return parent === path ? path : join(realPath(parent), basename(path));
  }
}

/** `--host-path` (or `--host-path-ro`) values as roots: absolute, existing, symlinks resolved. */
export function hostPathRoots(dirs: readonly string[], flag = "--host-path"): string[] {
  return dirs.map((dir) => {
    if (!dir.startsWith("/")) throw new ErrInvalidConfig(`${flag} ${dir}: must be absolute`);
    try {
      return realpathSync(dir);
    } catch {
      throw new ErrInvalidConfig(`${flag} ${dir}: no such directory`);
    }
  });
}

/**
 * Of `roots`, those callers may write (`--host-path`; `--host-path-ro` roots are not): a
 * read-write host_fs mount or disk must lie under one, and a policy script (code the node
 * runs in its own process) must not, or the operator token would write a file and then have
 * the node run it (review rev19 H2).
 */
export function writableOf(roots: HostPathRoots, writable?: readonly string[]): readonly string[] {
  return roots === "any" ? [] : (writable ?? roots);
}

/** Whether the resolved path `real` lies under one of `roots`. */
export function underRoots(real: string, roots: readonly string[]): boolean {
  return roots.some((root) => real === root || real.startsWith(root === sep ? root : root + sep));
}

/** The path to use for `value`: checked, and with symlinks resolved when roots are set. */
export function onNode(field: string, value: unknown, roots: HostPathRoots): unknown {
  if (typeof value !== "string") return value;
  if (!value.startsWith("/"))
    throw new ErrInvalidConfig(
      `${field}: a path on the node must be absolute, got ${JSON.stringify(value)}`,
    );
  if (roots === "any") return value;
  if (roots.length === 0)
    throw new ErrInvalidConfig(
      `${field}: this node opens no host paths to callers (its owner can, with serve --host-path DIR)`,
    );
  // Symlinks resolved, `..` gone, and that path used: what is checked is what is opened.
  const real = realPath(resolve(value));
  if (!underRoots(real, roots))
    throw new ErrInvalidConfig(
      `${field}: ${JSON.stringify(value)} is outside the directories this node opens to callers`,
    );
  return real;
}
