import { createHash } from "node:crypto";
import { readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cacheDir, makePrivateDir } from "./paths.js";

/**
 * Values derived from files (a package's version, a content hash) that every sandbox start
 * needs, kept on disk between processes and keyed by the files' identities: device, inode,
 * size, mtime and ctime, as git's index does. Editing, replacing or touching a file changes
 * its key (ctime moves on any change, and no user can set it), so a stale value is never
 * used; a memo only saves the work (a `dpkg-query` run, reading and hashing sources) when
 * nothing changed. Stat calls are synchronous: a few dozen of them cost well under a
 * millisecond, far less than a trip through the thread pool each on a loaded machine.
 */

/** The stat fields after each path in an identity line (dev, ino, size, mtime, ctime). */
const IDENTITY_STAT_FIELDS = 5;

/** The identity of these files as one string, or undefined when one cannot be stat'ed. */
export function filesIdentity(paths: readonly string[]): string | undefined {
  const parts: string[] = [];
  for (const path of paths) {
    try {
      const st = statSync(path, { bigint: true });
      parts.push(`${path}:${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`);
    } catch {
      return undefined;
    }
  }
  return parts.join("\n");
}

/** The value memoised under `name` for `identity`, or undefined. */
export function readStatMemo(name: string, identity: string): string | undefined {
  try {
    const m = JSON.parse(readFileSync(memoPath(name, identity), "utf8")) as Partial<Memo>;
    return m.identity === identity && typeof m.value === "string" ? m.value : undefined;
  } catch {
    return undefined;
  }
}

/** Best effort: a memo that cannot be written only means doing the work again next time. */
export function writeStatMemo(name: string, identity: string, value: string): void {
  const path = memoPath(name, identity);
  try {
    makePrivateDir(join(path, ".."));
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ identity, value } satisfies Memo), { mode: 0o600 });
    renameSync(tmp, path);
  } catch {
    // ignored: see above
  }
}

interface Memo {
  identity: string;
  value: string;
}

/**
 * One file per name and set of files: two checkouts (two guest/ dirs, two bundles) keep a memo
 * each instead of overwriting one another's at every call and redoing the work each time.
 */
function memoPath(name: string, identity: string): string {
  const files = identity
    .split("\n")
    .map((line) => line.split(":").slice(0, -IDENTITY_STAT_FIELDS).join(":"))
    .join("\0");
  const key = createHash("sha256").update(files).digest("hex").slice(0, 16);
  return join(cacheDir(), "memo", `${name}-${key}.json`);
}
