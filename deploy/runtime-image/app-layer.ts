/**
 * The runtime image's second layer: wheellock itself (dist/, guest/, production node_modules),
 * the Node binary that runs it, and the guest assets `setup` prepared on this machine (kernel,
 * agent, initramfs, default image), laid out as the image's cache dir so a sandbox in the image
 * starts without building anything. Every entry has a fixed mtime, so the same inputs give the
 * same layer digest.
 */
import { createReadStream, lstatSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { pack, type Header, type Pack } from "tar-stream";
import { RUNTIME_USER } from "./base-layer.js";

export const APP_DIR = "/opt/wheellock/app";
export const IMAGE_CACHE_DIR = "/opt/wheellock/cache";
export const IMAGE_DATA_DIR = "/var/lib/wheellock";

/** 2024-01-01: reproducible, and later than any tool's "too old" check. */
const MTIME = new Date("2024-01-01T00:00:00Z");

export interface AppLayerInputs {
  /** The wheellock checkout (with dist/ built and node_modules installed). */
  repoRoot: string;
  /** Production packages, as directories under repoRoot/node_modules. */
  prodPackages: readonly string[];
  /** The Node binary to ship (Debian 12's Node is older than wheellock needs). */
  nodeBinary: string;
  /** The host cache dir and the guest assets in it to ship (paths relative to it). */
  cacheDir: string;
  cacheEntries: readonly string[];
}

type Entry = Partial<Header> & { name: string; source?: string };

/** The layer as a tar stream (finalized once every entry is written). */
export function appLayerTar(inputs: AppLayerInputs): Pack {
  const p = pack();
  void writeEntries(p, entries(inputs)).then(
    () => p.finalize(),
    (err: unknown) => p.destroy(err as Error),
  );
  return p;
}

function entries(inputs: AppLayerInputs): Entry[] {
  const out: Entry[] = [];
  const root = { uid: 0, gid: 0 };
  const user = { uid: RUNTIME_USER.uid, gid: RUNTIME_USER.uid };
  const dir = (name: string, mode: number, owner = root): void => {
    out.push({ name: `${name.replace(/^\//, "")}/`, type: "directory", mode, ...owner });
  };
  dir("/usr/local/bin", 0o755);
  out.push({
    name: "usr/local/bin/node",
    type: "file",
    mode: 0o755,
    source: inputs.nodeBinary,
    ...root,
  });
  out.push({
    name: "usr/local/bin/wheellock",
    type: "symlink",
    linkname: `${APP_DIR}/dist/cli/main.cjs`,
    mode: 0o777,
    ...root,
  });
  dir("/opt/wheellock", 0o755);
  dir(APP_DIR, 0o755);
  out.push(fileEntry(join(inputs.repoRoot, "package.json"), `${APP_DIR}/package.json`, root));
  for (const sub of ["dist", "guest"])
    out.push(
      ...tree(
        join(inputs.repoRoot, sub),
        `${APP_DIR}/${sub}`,
        root,
        (p) => !p.startsWith("guest/build"),
      ),
    );
  dir(`${APP_DIR}/node_modules`, 0o755);
  for (const pkg of inputs.prodPackages) {
    const rel = relative(join(inputs.repoRoot, "node_modules"), pkg);
    const parts = rel.split("/");
    // Scoped packages: the scope's own directory first.
    if (parts[0]?.startsWith("@")) dir(`${APP_DIR}/node_modules/${parts[0]}`, 0o755);
    out.push(...tree(pkg, `${APP_DIR}/node_modules/${rel}`, root));
  }
  // The runtime user owns its cache and data dirs: snapshots, pulled images and sandboxes'
  // run dirs are written there.
  dir(IMAGE_CACHE_DIR, 0o700, user);
  dir(`${IMAGE_CACHE_DIR}/images`, 0o700, user);
  dir(`${IMAGE_CACHE_DIR}/images/oci`, 0o700, user);
  dir(`${IMAGE_CACHE_DIR}/snapshots`, 0o700, user);
  for (const rel of inputs.cacheEntries)
    out.push(...tree(join(inputs.cacheDir, rel), `${IMAGE_CACHE_DIR}/${rel}`, user));
  dir(IMAGE_DATA_DIR, 0o700, user);
  // dist/cli/main.cjs is the `wheellock` command: it must be executable.
  for (const e of out) if (e.name === `${APP_DIR.slice(1)}/dist/cli/main.cjs`) e.mode = 0o755;
  return dedupeDirs(out);
}

/** Every file, directory and symlink under `from`, named under `to` (sorted, stable). */
function tree(
  from: string,
  to: string,
  owner: { uid: number; gid: number },
  keep: (relPath: string) => boolean = () => true,
): Entry[] {
  const out: Entry[] = [];
  const walk = (path: string, name: string): void => {
    const st = lstatSync(path);
    const rel = relative(join(from, ".."), path);
    if (!keep(rel)) return;
    if (st.isDirectory()) {
      out.push({
        name: `${name.replace(/^\//, "")}/`,
        type: "directory",
        mode: (st.mode & 0o7777) | 0o755,
        ...owner,
      });
      for (const child of readdirSync(path).sort()) walk(join(path, child), `${name}/${child}`);
    } else if (st.isSymbolicLink()) {
      out.push({
        name: name.replace(/^\//, ""),
        type: "symlink",
        linkname: readlinkSync(path),
        mode: 0o777,
        ...owner,
      });
    } else if (st.isFile()) {
      out.push(fileEntry(path, name, owner));
    }
  };
  walk(from, to);
  return out;
}

function fileEntry(path: string, name: string, owner: { uid: number; gid: number }): Entry {
  const mode = statSync(path).mode & 0o777;
  // Owner-readable for the runtime user's files; world-readable for root's.
  return {
    name: name.replace(/^\//, ""),
    type: "file",
    mode: owner.uid === 0 ? mode | 0o444 : mode | 0o400,
    source: path,
    ...owner,
  };
}

function dedupeDirs(entries: Entry[]): Entry[] {
  const seen = new Set<string>();
  return entries.filter((e) => {
    if (e.type !== "directory") return true;
    if (seen.has(e.name)) return false;
    seen.add(e.name);
    return true;
  });
}

async function writeEntries(p: Pack, list: readonly Entry[]): Promise<void> {
  for (const { source, ...header } of list) {
    const h = { ...header, mtime: MTIME, uname: "", gname: "" } as Header;
    if (!source) {
      await new Promise<void>((resolve, reject) =>
        p.entry(h, (err) => (err ? reject(err) : resolve())),
      );
      continue;
    }
    const size = statSync(source).size;
    await new Promise<void>((resolve, reject) => {
      const sink = p.entry({ ...h, size }, (err) => (err ? reject(err) : resolve()));
      const file = createReadStream(source, { highWaterMark: 1 << 20 });
      file.on("error", (err) => sink.destroy(err));
      file.pipe(sink);
    });
  }
}
