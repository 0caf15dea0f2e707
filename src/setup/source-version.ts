import { readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { cacheDir, makePrivateDir } from "../paths.js";
import { runTool } from "../util/index.js";

/**
 * The installed version of a Debian package that provides `file`, as `dpkg-query` says, or
 * undefined when dpkg does not know it (or is not there: not a Debian-family host).
 *
 * Every sandbox start asks (the minimal kernel's cache key holds the kernel source package's
 * version), and starting `dpkg-query` cost a CLI call ~25-50 ms on a loaded 2-core machine:
 * the answer is kept on disk, keyed by the identity of `file` (inode, size, mtime). An upgrade
 * or reinstall unpacks a new file, so the key changes with the version.
 */
export async function installedPackageVersion(
  pkg: string,
  file: string,
): Promise<string | undefined> {
  const st = await stat(file, { bigint: true }).catch(() => undefined);
  if (st === undefined) return undefined;
  const fileId = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
  const memoPath = join(cacheDir(), "package-versions", `${pkg}.json`);
  const memo = await readMemo(memoPath);
  if (memo?.fileId === fileId) return memo.version;
  let version: string;
  try {
    const res = await runTool(["dpkg-query", "-W", "-f=${Version}", pkg]);
    version = res.code === 0 ? res.stdout.trim() : "";
  } catch {
    return undefined; // no dpkg
  }
  if (version.length === 0) return undefined;
  await writeMemo(memoPath, { fileId, version });
  return version;
}

interface Memo {
  fileId: string;
  version: string;
}

async function readMemo(path: string): Promise<Memo | undefined> {
  try {
    const m = JSON.parse(await readFile(path, "utf8")) as Partial<Memo>;
    return typeof m.fileId === "string" && typeof m.version === "string"
      ? { fileId: m.fileId, version: m.version }
      : undefined;
  } catch {
    return undefined;
  }
}

/** Best effort: a memo that cannot be written only means asking dpkg again next time. */
async function writeMemo(path: string, memo: Memo): Promise<void> {
  try {
    makePrivateDir(join(path, ".."));
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(memo), { mode: 0o600 });
    await rename(tmp, path);
  } catch {
    // ignored: see above
  }
}
