import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import { existsSync } from "node:fs";
import { copyFile, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { ErrSetup } from "../errors.js";
import { withFileLock } from "../util/index.js";
import { runTool, runToolOk } from "../util/index.js";
import { loadOrder, moduleDepends, normalizeModuleName } from "./modinfo.js";
import { makePrivateDir } from "../paths.js";

export interface GuestKernel {
  version: string;
  vmlinuzPath: string;
  /** Absolute .ko paths (uncompressed), in load order; empty for a kernel with everything built in. */
  moduleFiles: string[];
}

/** The meta package whose single dependency names the current cloud kernel. */
const META_PACKAGE = "linux-image-cloud-amd64";

/**
 * What the guest needs as modules (anything built in is skipped). virtio_net's failover deps
 * and the virtio core arrive through `depends=`.
 */
const WANTED_MODULES = [
  "virtio_mmio",
  "virtio_blk",
  "virtio_console",
  "virtio_net",
  "virtio_rng",
  "fuse",
  "overlay",
  "ext4",
];

/** Written last into a kernel's cache dir: its presence means the entry is complete. */
const MANIFEST = "kernel.json";

interface Manifest {
  version: string;
  modules: string[];
}

const setupError = (m: string, cause?: unknown): ErrSetup => new ErrSetup(m, { cause });

/** A user-supplied kernel (WHEELLOCK_KERNEL): everything the guest needs is built in. */
export function kernelFromOverride(path: string): GuestKernel {
  const vmlinuzPath = resolve(path);
  if (!existsSync(vmlinuzPath)) throw new ErrSetup(`kernel not found: ${vmlinuzPath}`);
  return { version: "override", vmlinuzPath, moduleFiles: [] };
}

/**
 * Debian's cloud kernel, unpacked (never installed) into `<cacheDir>/kernel/<version>/` with
 * the modules the guest loads. A cached kernel is used as is, with no apt call: the guest
 * kernel changes only when the cache is cleared.
 */
export async function ensureGuestKernel(
  cacheDir: string,
  log: (msg: string) => void,
): Promise<GuestKernel> {
  const root = join(cacheDir, "kernel");
  const cached = await newestCached(root);
  if (cached) return cached;
  makePrivateDir(root);
  return withFileLock(
    join(root, ".lock"),
    { timeoutMs: 10 * 60_000, onWait: (pid) => log(`waiting for pid ${pid} to fetch the kernel`) },
    async () => {
      const again = await newestCached(root);
      if (again) return again;
      return fetchKernel(root, log);
    },
  );
}

async function newestCached(root: string): Promise<GuestKernel | undefined> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return undefined;
  }
  const versions = names
    .filter((n) => !n.startsWith("."))
    .sort(compareVersions)
    .reverse();
  for (const v of versions) {
    const k = await readCached(join(root, v));
    if (k) return k;
  }
  return undefined;
}

async function readCached(dir: string): Promise<GuestKernel | undefined> {
  try {
    const m = JSON.parse(await readFile(join(dir, MANIFEST), "utf8")) as Manifest;
    const kernel: GuestKernel = {
      version: m.version,
      vmlinuzPath: join(dir, "vmlinuz"),
      moduleFiles: m.modules.map((n) => join(dir, "modules", `${n}.ko`)),
    };
    const complete =
      existsSync(kernel.vmlinuzPath) && kernel.moduleFiles.every((f) => existsSync(f));
    return complete ? kernel : undefined;
  } catch {
    return undefined;
  }
}

async function fetchKernel(root: string, log: (msg: string) => void): Promise<GuestKernel> {
  const pkg = await concretePackage();
  const work = join(root, `.tmp-${process.pid}-${Date.now()}`);
  makePrivateDir(work);
  try {
    log(`downloading ${pkg}`);
    // A Sandbox user of root avoids apt's warning about dropping to _apt in a dir it cannot write.
    await runToolOk(
      ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", pkg],
      setupError,
      { cwd: work },
    );
    const deb = (await readdir(work)).find((f) => f.endsWith(".deb"));
    if (!deb) throw new ErrSetup(`apt-get download ${pkg} produced no .deb`);
    const tree = join(work, "tree");
    await runToolOk(["dpkg-deb", "-x", join(work, deb), tree], setupError);

    const modRoot = await findModulesDir(tree);
    const version = basename(modRoot);
    const out = join(work, "out");
    makePrivateDir(join(out, "modules"));
    await copyFile(join(tree, "boot", `vmlinuz-${version}`), join(out, "vmlinuz"));

    const files = await indexModules(join(modRoot, "kernel"));
    const builtin = await readBuiltin(join(modRoot, "modules.builtin"));
    const bytes = new Map<string, Buffer>();
    const load = async (name: string): Promise<Buffer | undefined> => {
      const cachedBytes = bytes.get(name);
      if (cachedBytes) return cachedBytes;
      const file = files.get(name);
      if (!file) return undefined;
      const data = await decompress(file);
      bytes.set(name, data);
      return data;
    };
    // loadOrder is synchronous; fetch everything reachable first.
    const pending = [...WANTED_MODULES.map(normalizeModuleName)];
    const depsOf = new Map<string, string[]>();
    while (pending.length > 0) {
      const name = pending.pop() as string;
      if (depsOf.has(name) || builtin.has(name)) continue;
      const data = await load(name);
      if (!data) continue;
      const deps = moduleDepends(data);
      depsOf.set(name, deps);
      pending.push(...deps);
    }
    let order: string[];
    try {
      order = loadOrder(WANTED_MODULES, builtin, (n) => depsOf.get(n));
    } catch (err) {
      throw new ErrSetup(`kernel ${version}: ${(err as Error).message}`);
    }
    for (const name of order)
      await writeFile(join(out, "modules", `${name}.ko`), bytes.get(name) as Buffer);
    const manifest: Manifest = { version, modules: order };
    await writeFile(join(out, MANIFEST), JSON.stringify(manifest, null, 2));
    const dest = join(root, version);
    await rm(dest, { recursive: true, force: true });
    await rename(out, dest);
    log(`guest kernel ${version} ready (${order.length} modules: ${order.join(" ")})`);
    const k = await readCached(dest);
    if (!k) throw new ErrSetup(`kernel cache entry ${dest} is incomplete`);
    return k;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** linux-image-cloud-amd64 depends on exactly one linux-image-<abi>-cloud-amd64. */
async function concretePackage(): Promise<string> {
  const lookup = async (): Promise<string | undefined> => {
    const res = await runTool(["apt-cache", "depends", META_PACKAGE]);
    return /Depends:\s*(linux-image-\S+-cloud-amd64)/.exec(res.stdout)?.[1];
  };
  let pkg = await lookup();
  // A fresh machine (or a container image) often has no package lists yet.
  if (pkg === undefined && process.getuid?.() === 0) {
    await runToolOk(["apt-get", "update", "-q"], setupError);
    pkg = await lookup();
  }
  if (pkg === undefined) {
    throw new ErrSetup(
      `cannot find the kernel behind ${META_PACKAGE} (no package lists? run apt-get update as root), or set WHEELLOCK_KERNEL`,
    );
  }
  return pkg;
}

async function findModulesDir(tree: string): Promise<string> {
  for (const base of ["lib/modules", "usr/lib/modules"]) {
    const dir = join(tree, base);
    if (!existsSync(dir)) continue;
    const [first] = await readdir(dir);
    if (first) return join(dir, first);
  }
  throw new ErrSetup("kernel package has no lib/modules directory");
}

const KO_SUFFIX = /\.ko(\.(xz|zst|gz))?$/;

/** module name -> file, over the whole modules tree. */
async function indexModules(dir: string): Promise<Map<string, string>> {
  const index = new Map<string, string>();
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  for (const e of entries) {
    if (!e.isFile() || !KO_SUFFIX.test(e.name)) continue;
    index.set(normalizeModuleName(e.name.replace(KO_SUFFIX, "")), join(e.parentPath, e.name));
  }
  return index;
}

async function readBuiltin(path: string): Promise<Set<string>> {
  const text = existsSync(path) ? await readFile(path, "utf8") : "";
  return new Set(
    text
      .split("\n")
      .filter((l) => l.length > 0)
      .map((l) => normalizeModuleName(basename(l).replace(KO_SUFFIX, ""))),
  );
}

/** finit_module in the guest needs plain ELF: undo the package's compression, if any. */
async function decompress(file: string): Promise<Buffer> {
  if (file.endsWith(".gz")) return gunzipSync(await readFile(file));
  if (file.endsWith(".xz")) return decompressWith(["xz", "-dc", file]);
  if (file.endsWith(".zst")) return decompressWith(["zstd", "-dcq", file]);
  return readFile(file);
}

const execFileAsync = promisify(execFile);

async function decompressWith([cmd, ...args]: string[]): Promise<Buffer> {
  try {
    const { stdout } = await execFileAsync(cmd as string, args, {
      encoding: "buffer",
      maxBuffer: 256 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    throw new ErrSetup(`${cmd} ${args.join(" ")} failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Orders "6.1.0-9-cloud-amd64" before "6.1.0-56-cloud-amd64". */
function compareVersions(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}
