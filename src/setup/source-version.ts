import { runTool } from "../util/index.js";
import { filesIdentity, readStatMemo, writeStatMemo } from "../stat-memo.js";

/**
 * The installed version of a Debian package that provides `file`, as `dpkg-query` says, or
 * undefined when dpkg does not know it (or is not there: not a Debian-family host).
 *
 * Every sandbox start asks (the minimal kernel's cache key holds the kernel source package's
 * version), and starting `dpkg-query` cost a CLI call ~25-50 ms on a loaded 2-core machine:
 * the answer is kept on disk, keyed by the identity of `file` (stat-memo.ts). An upgrade or
 * reinstall unpacks a new file, so the key changes with the version.
 */
export async function installedPackageVersion(
  pkg: string,
  file: string,
): Promise<string | undefined> {
  const identity = filesIdentity([file]);
  if (identity === undefined) return undefined;
  const memoName = `package-version-${pkg}`;
  const memo = readStatMemo(memoName, identity);
  if (memo !== undefined) return memo;
  let version: string;
  try {
    const res = await runTool(["dpkg-query", "-W", "-f=${Version}", pkg]);
    version = res.code === 0 ? res.stdout.trim() : "";
  } catch {
    return undefined; // no dpkg
  }
  if (version.length === 0) return undefined;
  writeStatMemo(memoName, identity, version);
  return version;
}
