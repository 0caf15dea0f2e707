/**
 * Wheellock's own directories must never be reachable from a guest. A host directory mounted
 * into a sandbox (host_fs, an overlay's lower layer) or a disk image attached to it that holds,
 * is, or lies inside the data dir (records, checkpoints and their key, the CA key, volumes), the
 * run dir (sockets, upper disks of running sandboxes) or the cache dir (kernel, agent, images,
 * snapshots) would hand the guest its own run dir, other sandboxes' state and keys, or the
 * files the next sandboxes boot from. Mounting `$HOME` with the default data dir is the
 * common case.
 *
 * Compared on what the paths really are: symlinks resolved, and by identity (`dev:ino`) of
 * every directory on the way up, so a bind mount of one of these directories elsewhere is
 * caught too.
 */
import { realpathSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { cacheDir, dataDir, runDir } from "../paths.js";

/** The host-wide jail-id claims (src/vmm/jail-ids.ts). */
const CLAIMS_ROOT = "/run/wheellock";

/**
 * Places inside those directories whose subdirectories hold only what guests wrote or are
 * meant to see: kept overlay upper layers (src/sandbox/fuse-mounts.ts), a build's cache
 * mounts (src/build/cache.ts) and its steps' scratch, secret files for one step included
 * (src/build/builder.ts, under the image store). A path strictly inside one may be mounted;
 * the place itself, or anything above it, may not.
 */
function guestShared(): string[] {
  return [
    join(dataDir(), "overlays"),
    join(cacheDir(), "build", "mounts"),
    join(cacheDir(), "images", "oci", "tmp"),
  ];
}

function ownDirs(): { what: string; path: string }[] {
  return [
    { what: "data dir", path: dataDir() },
    { what: "run dir", path: runDir() },
    { what: "cache dir", path: cacheDir() },
    { what: "host-wide state dir", path: CLAIMS_ROOT },
  ];
}

/** The real path of `path`'s nearest existing ancestor-or-self, with the missing rest added. */
function realOrNearest(path: string): { real: string; existing: string } {
  let p = resolve(path);
  let rest = "";
  for (;;) {
    try {
      const real = realpathSync(p);
      return { real: rest === "" ? real : join(real, rest), existing: real };
    } catch {
      const parent = dirname(p);
      if (parent === p) return { real: resolve(path), existing: "/" };
      rest = rest === "" ? basename(p) : join(basename(p), rest);
      p = parent;
    }
  }
}

function identity(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/** Identities of `real` (an existing real path) and of every directory above it. */
function chain(real: string): Set<string> {
  const ids = new Set<string>();
  for (let p = real; ; p = dirname(p)) {
    const id = identity(p);
    if (id !== undefined) ids.add(id);
    if (dirname(p) === p) return ids;
  }
}

function inside(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(outer === "/" ? "/" : `${outer}/`);
}

/**
 * Why `hostPath` (an existing host file or directory the guest would see) must not be given
 * to a guest, or undefined when it is clear of wheellock's own directories.
 */
export function ownDirConflict(hostPath: string): string | undefined {
  const source = realOrNearest(hostPath);
  const sourceId = identity(source.real);
  const sourceChain = chain(source.existing);
  const shared = guestShared().some((p) => {
    const place = realOrNearest(p).real;
    return source.real !== place && inside(source.real, place);
  });
  for (const { what, path } of ownDirs()) {
    const own = realOrNearest(path);
    // The source holds (or is) the directory, or the place it will be made in.
    if (
      inside(own.real, source.real) ||
      (sourceId !== undefined && chain(own.existing).has(sourceId))
    )
      return `holds wheellock's ${what} ${own.real}`;
    const ownId = own.existing === own.real ? identity(own.real) : undefined;
    if (shared) continue;
    if (inside(source.real, own.real) || (ownId !== undefined && sourceChain.has(ownId)))
      return `is inside wheellock's ${what} ${own.real}`;
  }
  return undefined;
}
