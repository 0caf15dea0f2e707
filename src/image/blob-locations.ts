import { randomBytes } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { makePrivateDir } from "../paths.js";

interface LocationsFile {
  version: 1;
  /** registry → digest → repositories that hold it, most recent first. */
  registries: Record<string, Record<string, string[]>>;
}

/** Enough for thousands of images; older entries fall off first. */
const MAX_DIGESTS_PER_REGISTRY = 20_000;
const MAX_REPOSITORIES_PER_DIGEST = 4;

/**
 * Where this machine has seen blobs on registries (pushed there): the candidates for
 * cross-repository mounts, so pushing an image to a second repository of the same registry
 * moves no bytes. Only a hint: a wrong entry costs one declined mount, and two processes
 * writing at once lose one update at worst.
 */
export class BlobLocations {
  constructor(readonly path: string) {}

  async sources(registry: string, digest: string): Promise<string[]> {
    return (await this.load()).registries[registry]?.[digest] ?? [];
  }

  async remember(registry: string, repository: string, digests: readonly string[]): Promise<void> {
    const file = await this.load();
    const known = (file.registries[registry] ??= {});
    for (const digest of digests) {
      const repos = [repository, ...(known[digest] ?? []).filter((r) => r !== repository)];
      delete known[digest]; // re-inserted last: the newest entries are the last keys
      known[digest] = repos.slice(0, MAX_REPOSITORIES_PER_DIGEST);
    }
    const keys = Object.keys(known);
    for (const old of keys.slice(0, Math.max(0, keys.length - MAX_DIGESTS_PER_REGISTRY)))
      delete known[old];
    makePrivateDir(dirname(this.path));
    const tmp = `${this.path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    await writeFile(tmp, JSON.stringify(file));
    await rename(tmp, this.path);
  }

  private async load(): Promise<LocationsFile> {
    try {
      const parsed = JSON.parse(await readFile(this.path, "utf8")) as Partial<LocationsFile>;
      if (parsed.version === 1 && parsed.registries && typeof parsed.registries === "object")
        return { version: 1, registries: parsed.registries };
    } catch {
      // Missing or damaged: start over (it is only a hint).
    }
    return { version: 1, registries: {} };
  }
}
