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
import { readdirSync, readFileSync, realpathSync, statSync, statfsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { cacheDir, dataDir, runDir } from "../paths.js";
import { fileIdentity } from "../util/index.js";

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
    return fileIdentity(statSync(path, { bigint: true }));
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

/** One line of /proc/self/mountinfo: what matters here. */
interface MountEntry {
  /** major:minor of the file system. */
  dev: string;
  /** The directory of that file system mounted here (a bind mount's source inside it). */
  root: string;
  mountPoint: string;
  fsType: string;
}

function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** This process's mounts, read once per check; none where /proc is not there. */
function readMounts(): MountEntry[] {
  let text: string;
  try {
    text = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return [];
  }
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(" ");
    const sep = f.indexOf("-", 6);
    if (f.length < 5 || sep < 0 || sep + 1 >= f.length) continue;
    out.push({
      dev: f[2] ?? "",
      root: unescapeMountPath(f[3] ?? ""),
      mountPoint: unescapeMountPath(f[4] ?? ""),
      fsType: f[sep + 1] ?? "",
    });
  }
  return out;
}

/**
 * Kernel pseudo file systems: a host provider serving /proc/PID/mem, /sys or a cgroup tree
 * hands the guest the host's processes and devices. By `statfs` magic (procfs, sysfs,
 * debugfs, securityfs, cgroup, cgroup2, tracefs, bpf) and, in mountinfo, by type.
 */
const PSEUDO_MAGIC = new Set([
  0x9fa0, 0x62656572, 0x64626720, 0x73636673, 0x27e0eb, 0x63677270, 0x74726163, 0xcafe4a11,
]);
const PSEUDO_TYPES = new Set([
  "proc",
  "sysfs",
  "debugfs",
  "securityfs",
  "cgroup",
  "cgroup2",
  "tracefs",
  "bpf",
  "devtmpfs",
  "devpts",
  "configfs",
  "efivarfs",
  "pstore",
  "fusectl",
  "binfmt_misc",
]);
/** devtmpfs has tmpfs's magic: refused by where it is. */
const PSEUDO_PLACES = ["/proc", "/sys", "/dev"];

function onPseudoFs(real: string): boolean {
  if (PSEUDO_PLACES.some((p) => inside(real, p))) return true;
  try {
    return PSEUDO_MAGIC.has(Number(statfsSync(real).type) >>> 0);
  } catch {
    return false;
  }
}

const PSEUDO = "a proc/sys pseudo file system";

/**
 * Other paths of the directory at `real` (an existing real path): where other mounts of its
 * file system (bind mounts) show it. A bind mount of the data dir's `checkpoints` elsewhere
 * shares no directory above it with the data dir; its path inside the file system does.
 */
function aliases(real: string, mounts: readonly MountEntry[]): string[] {
  let at: MountEntry | undefined;
  for (const m of mounts)
    if (
      inside(real, m.mountPoint) &&
      (at === undefined || m.mountPoint.length >= at.mountPoint.length)
    )
      at = m;
  if (at === undefined) return [];
  const inFs = join(at.root, real.slice(at.mountPoint.length));
  const out: string[] = [];
  for (const m of mounts) {
    if (m === at || m.dev !== at.dev || !inside(inFs, m.root)) continue;
    out.push(join(m.mountPoint, inFs.slice(m.root.length)));
  }
  return out;
}

/** One of wheellock's own directories, resolved once per check. */
interface OwnPlace {
  what: string;
  /** Its real path (or where it will be made). */
  real: string;
  /** Identities of its nearest existing ancestor-or-self and of every directory above. */
  chain: Set<string>;
  /** Its own identity, when it exists. */
  id: string | undefined;
}

/** What every test of one check compares against: the own dirs and the guest-shared places. */
interface OwnPlaces {
  own: OwnPlace[];
  shared: string[];
  mounts: readonly MountEntry[];
}

function ownPlaces(allowGuestShared: boolean, mounts: readonly MountEntry[]): OwnPlaces {
  return {
    own: ownDirs().map(({ what, path }) => {
      const { real, existing } = realOrNearest(path);
      return {
        what,
        real,
        chain: chain(existing),
        id: existing === real ? identity(real) : undefined,
      };
    }),
    shared: allowGuestShared ? guestShared().map((p) => realOrNearest(p).real) : [],
    mounts,
  };
}

/** The identity test for one directory or file the guest would reach, at `real`. */
function conflictAt(real: string, existing: string, places: OwnPlaces): string | undefined {
  const sourceId = identity(real);
  const sourceChain = chain(existing);
  const paths = existing === real ? [real, ...aliases(real, places.mounts)] : [real];
  const shared = (path: string) =>
    places.shared.some((place) => path !== place && inside(path, place));
  for (const own of places.own) {
    // The source holds (or is) the directory, or the place it will be made in.
    if (
      paths.some((p) => inside(own.real, p)) ||
      (sourceId !== undefined && own.chain.has(sourceId))
    )
      return `holds wheellock's ${own.what} ${own.real}`;
    if (paths.some((p) => inside(p, own.real) && !shared(p)))
      return `is inside wheellock's ${own.what} ${own.real}`;
    if (!shared(real) && own.id !== undefined && sourceChain.has(own.id))
      return `is inside wheellock's ${own.what} ${own.real}`;
  }
  return undefined;
}

/** Where in the data dir a walk for a file's other names does not go: chunk files only. */
const NOT_WALKED = new Set(["objects"]);
const WALK_DEPTH = 4;

/**
 * For a file with other names (a hard link), the one inside the data dir, if any: a link to
 * the CA key or a checkpoint key made elsewhere passes every path test, and a link to a
 * volume's image attached as a disk would have two writers on one ext4. Rare (the file must
 * have a link count above one), so a walk of the data dir is affordable then.
 */
function linkInDataDir(real: string): string | undefined {
  let want: string;
  try {
    const st = statSync(real, { bigint: true });
    if (!st.isFile() || st.nlink < 2n) return undefined;
    want = fileIdentity(st);
  } catch {
    return undefined;
  }
  const walk = (dir: string, depth: number): string | undefined => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return undefined;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isFile() && identity(path) === want) return path;
      if (entry.isDirectory() && depth > 0 && !NOT_WALKED.has(entry.name)) {
        const found = walk(path, depth - 1);
        if (found !== undefined) return found;
      }
    }
    return undefined;
  };
  return walk(realOrNearest(dataDir()).real, WALK_DEPTH);
}

export interface OwnDirCheck {
  /**
   * Whether what wheellock itself shares with guests (kept overlay layers, a build's cache
   * mounts and step scratch) may be mounted. Only for its own callers (the SDK, the CLI, a
   * build); never for a path a network caller of `serve` names. Default false.
   */
  allowGuestShared?: boolean;
}

/**
 * Why `hostPath` (an existing host file or directory the guest would see) must not be given
 * to a guest, or undefined when it is clear: it is on a proc/sys pseudo file system, or it
 * holds, is or lies inside wheellock's own directories; for a directory, the same for every
 * mount below it (a bind mount of `$HOME` inside an innocent directory).
 */
export function ownDirConflict(hostPath: string, check: OwnDirCheck = {}): string | undefined {
  const source = realOrNearest(hostPath);
  if (PSEUDO_PLACES.some((p) => inside(resolve(hostPath), p)) || onPseudoFs(source.real))
    return `is on ${PSEUDO}`;
  const mounts = readMounts();
  const places = ownPlaces(check.allowGuestShared === true, mounts);
  const own = conflictAt(source.real, source.existing, places);
  if (own !== undefined) return own;
  const link = linkInDataDir(source.real);
  if (link !== undefined) return `is a hard link of wheellock's ${link}`;
  for (const m of mounts) {
    if (m.mountPoint === source.real || !inside(m.mountPoint, source.real)) continue;
    if (PSEUDO_TYPES.has(m.fsType) || onPseudoFs(m.mountPoint))
      return `holds ${PSEUDO} at ${m.mountPoint}`;
    const below = conflictAt(m.mountPoint, m.mountPoint, places);
    if (below !== undefined) return `has ${m.mountPoint} mounted in it, which ${below}`;
  }
  return undefined;
}
