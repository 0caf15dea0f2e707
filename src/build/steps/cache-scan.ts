/**
 * Secrets must not outlive their step. A cache mount (`RUN --mount=type=cache`) is a host
 * directory kept between builds and never scanned as a layer: a step given a secret could
 * leave it there (a tool caching its credentials), and a later build, one not given that
 * secret and so not looking for it, could copy it into a layer. So after a step that had
 * secret values in the guest, its writable cache mounts are searched for them (contents, file
 * names and link targets; links are never followed), and a mount holding one is emptied.
 */
import { createReadStream } from "node:fs";
import { lstat, readdir, readlink, rm } from "node:fs/promises";
import { join } from "node:path";
import { NeedleScanner, type Needle } from "../layer/scanner.js";

/** The label of the first needle found under `dir` (never following links), else undefined. */
export async function findNeedlesInTree(
  dir: string,
  needles: readonly Needle[],
): Promise<string | undefined> {
  if (needles.length === 0) return undefined;
  const inName = (s: string): string | undefined => {
    const scanner = new NeedleScanner(needles);
    scanner.push(Buffer.from(s));
    return scanner.found;
  };
  const visit = async (path: string): Promise<string | undefined> => {
    const st = await lstat(path);
    if (st.isSymbolicLink()) return inName(await readlink(path));
    if (st.isFile()) {
      const scanner = new NeedleScanner(needles);
      for await (const chunk of createReadStream(path)) {
        scanner.push(chunk as Buffer);
        if (scanner.found !== undefined) return scanner.found;
      }
      return undefined;
    }
    if (!st.isDirectory()) return undefined;
    for (const name of await readdir(path)) {
      const found = inName(name) ?? (await visit(join(path, name)));
      if (found !== undefined) return found;
    }
    return undefined;
  };
  return visit(dir);
}

/** Empties a cache mount's host directory (kept itself: the next build reuses it). */
export async function emptyDir(dir: string): Promise<void> {
  for (const name of await readdir(dir))
    await rm(join(dir, name), { recursive: true, force: true });
}
