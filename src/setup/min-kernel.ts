import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { appendFile, copyFile, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { ErrSetup } from "../errors.js";
import { makePrivateDir, packageRoot } from "../paths.js";
import { pidAlive, withFileLock } from "../util/index.js";
import { runToolOk } from "../util/index.js";
import { missingPackages, type HostPackage } from "./apt.js";
import type { GuestKernel } from "./kernel.js";
import { BuildProgress } from "./kernel-build-status.js";
import { installedPackageVersion } from "./source-version.js";

/** Debian's kernel source package; it installs the tarball below and nothing else of note. */
const SOURCE_PACKAGE = "linux-source-6.1";
const SOURCE_TARBALL = "/usr/src/linux-source-6.1.tar.xz";

/**
 * What building the minimal kernel needs. Kept apart from HOST_PACKAGES: those are required to
 * run a sandbox at all, these only to build the (optional, faster) kernel.
 */
export const MIN_KERNEL_PACKAGES: readonly HostPackage[] = [
  { pkg: SOURCE_PACKAGE, provides: SOURCE_TARBALL },
  { pkg: "xz-utils", provides: "xz" },
  { pkg: "make", provides: "make" },
  { pkg: "gcc", provides: "gcc" },
  { pkg: "bc", provides: "bc" },
  { pkg: "bison", provides: "bison" },
  { pkg: "flex", provides: "flex" },
  // objtool (x86_64) links against libelf; the build scripts include openssl headers.
  { pkg: "libelf-dev", provides: "/usr/include/libelf.h" },
  { pkg: "libssl-dev", provides: "/usr/include/openssl/ssl.h" },
  // The fragment picks an LZ4-compressed bzImage: the fastest decompressor under TCG.
  { pkg: "lz4", provides: "lz4" },
];

/** Bump when the build steps below change in a way that changes the kernel. */
const RECIPE_VERSION = "1";
const MANIFEST = "kernel.json";

interface Manifest {
  version: string;
  sourceVersion: string;
  buildMs: number;
}

const setupError = (m: string, cause?: unknown): ErrSetup =>
  new ErrSetup(`minimal kernel build: ${m}`, { cause });

/** guest/kernel/wheellock.config, applied over `make tinyconfig`. */
export function fragmentPath(): string {
  return join(packageRoot(), "guest", "kernel", "wheellock.config");
}

interface CacheKey {
  hash: string;
  sourceVersion: string;
  fragment: string;
}

/** undefined when the source package is not installed (nothing to build from). */
async function cacheKey(): Promise<CacheKey | undefined> {
  if (!existsSync(SOURCE_TARBALL) || !existsSync(fragmentPath())) return undefined;
  // undefined: not installed through dpkg, or not a Debian-family host.
  const sourceVersion = await installedPackageVersion(SOURCE_PACKAGE, SOURCE_TARBALL);
  if (sourceVersion === undefined) return undefined;
  const fragment = await readFile(fragmentPath(), "utf8");
  const hash = createHash("sha256")
    .update(`recipe ${RECIPE_VERSION}\0${SOURCE_PACKAGE} ${sourceVersion}\0`)
    .update(fragment)
    .digest("hex")
    .slice(0, 32);
  return { hash, sourceVersion, fragment };
}

async function readCached(dir: string): Promise<GuestKernel | undefined> {
  try {
    const m = JSON.parse(await readFile(join(dir, MANIFEST), "utf8")) as Manifest;
    const vmlinuzPath = join(dir, "vmlinuz");
    return existsSync(vmlinuzPath)
      ? { version: m.version, vmlinuzPath, moduleFiles: [] }
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The minimal kernel for the current fragment and source package if it was built before; never
 * builds (a sandbox start must not turn into a multi-minute compile).
 */
export async function findMinimalKernel(cacheDir: string): Promise<GuestKernel | undefined> {
  const key = await cacheKey();
  return key ? readCached(join(cacheDir, "kernel-min", key.hash)) : undefined;
}

/** undefined when the minimal kernel can be built here, else what is missing, e.g. "missing bc". */
export async function whyMinimalKernelCannotBuild(
  key?: CacheKey | undefined,
): Promise<string | undefined> {
  const missing = missingPackages(MIN_KERNEL_PACKAGES);
  if (missing.length === 0 && (key ?? (await cacheKey())) !== undefined) return undefined;
  const what = missing.length > 0 ? missing.map((p) => p.pkg) : [SOURCE_PACKAGE];
  return `missing ${[...new Set(what)].join(", ")}`;
}

/**
 * Builds guest/kernel/wheellock.config from Debian's kernel source into
 * `<cacheDir>/kernel-min/<hash>/vmlinuz` (hash of fragment and source version), once. undefined
 * when the source package or a build tool is missing, so callers fall back to Debian's kernel.
 */
export async function ensureMinimalKernel(
  cacheDir: string,
  log: (msg: string) => void,
): Promise<GuestKernel | undefined> {
  const key = await cacheKey();
  const missing = await whyMinimalKernelCannotBuild(key);
  if (!key || missing !== undefined) {
    log(`minimal guest kernel skipped (${missing ?? "no source"})`);
    return undefined;
  }
  const root = join(cacheDir, "kernel-min");
  const dest = join(root, key.hash);
  const cached = await readCached(dest);
  if (cached) return cached;
  makePrivateDir(root);
  return withFileLock(
    join(root, `.${key.hash}.lock`),
    {
      // A cold build on a slow 2-core machine takes 10+ minutes; CI allows 90 for everything.
      timeoutMs: 60 * 60_000,
      onWait: (pid) => log(`waiting for pid ${pid} to build the minimal guest kernel`),
    },
    async () => {
      const built = await readCached(dest);
      if (built) return built;
      await removeDeadBuilds(root);
      return buildKernel(cacheDir, key, log);
    },
  );
}

/**
 * Removes the work dirs of this process's builds (~1.5 GB each), synchronously: for a builder
 * that is being stopped by a signal and exits right after.
 */
export function removeOwnBuildDirs(cacheDir: string, pid = process.pid): void {
  const root = join(cacheDir, "kernel-min");
  let names: string[] = [];
  try {
    names = readdirSync(root);
  } catch {
    return;
  }
  for (const name of names)
    if (name.startsWith(`.build-${pid}-`))
      rmSync(join(root, name), { recursive: true, force: true });
}

/**
 * The pid of a live process holding a minimal-kernel build lock under `root`, if any: a
 * foreground `setup --wait` (or an older wheellock) may build without a status file, and a
 * second builder would only wait for it, for up to an hour.
 */
export function liveBuildLockHolder(root: string): number | undefined {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return undefined;
  }
  for (const name of names) {
    if (!/^\.[0-9a-f]{32}\.lock$/.test(name)) continue;
    let pid = Number.NaN;
    try {
      pid = Number.parseInt(readFileSync(join(root, name), "utf8").trim(), 10);
    } catch {
      continue;
    }
    if (Number.isSafeInteger(pid) && pid > 0 && pidAlive(pid)) return pid;
  }
  return undefined;
}

/**
 * Work dirs of builds whose process died (a killed `setup`, a reboot): ~1 GB each. A live
 * pid's may be another fragment's build, under its own lock, so it stays.
 */
export async function removeDeadBuilds(root: string): Promise<void> {
  for (const name of await readdir(root).catch(() => [])) {
    const pid = /^\.build-(\d+)-\d+$/.exec(name)?.[1];
    if (pid !== undefined && !pidAlive(Number(pid)))
      await rm(join(root, name), { recursive: true, force: true });
  }
}

async function buildKernel(cacheDir: string, key: CacheKey, log: (m: string) => void) {
  const root = join(cacheDir, "kernel-min");
  const started = Date.now();
  const work = join(root, `.build-${process.pid}-${started}`);
  makePrivateDir(work);
  // From the start (unpacking takes a minute or two): other processes see a build running.
  const progress = new BuildProgress(cacheDir, log, started);
  try {
    log(`building the minimal guest kernel from ${SOURCE_PACKAGE} ${key.sourceVersion} (minutes)`);
    await runToolOk(["nice", "-n", "19", "tar", "-xJf", SOURCE_TARBALL, "-C", work], setupError);
    const src = await sourceDir(work);
    const out = join(work, "out");
    makePrivateDir(out);
    // nice: setup may run next to VMs and other builds; the kernel build must not starve them.
    const niceMake = ["nice", "-n", "19", "make", "-C", src, `O=${out}`];
    const make = [...niceMake, "-s"];
    await runToolOk([...make, "tinyconfig"], setupError);
    // kconfig takes the last assignment of a symbol, so the fragment appended wins.
    await appendFile(join(out, ".config"), `\n${key.fragment}`);
    await runToolOk([...make, "olddefconfig"], setupError);
    checkFragmentApplied(key.fragment, await readFile(join(out, ".config"), "utf8"));
    // Not silent: make's step lines are what the progress counts.
    await runToolOk([...niceMake, `-j${availableParallelism()}`, "bzImage"], setupError, {
      onLine: (line) => progress.onLine(line),
    });
    const release = (
      await readFile(join(out, "include", "config", "kernel.release"), "utf8")
    ).trim();

    const staged = join(work, "result");
    makePrivateDir(staged);
    await copyFile(join(out, "arch", "x86", "boot", "bzImage"), join(staged, "vmlinuz"));
    await copyFile(join(out, ".config"), join(staged, "config"));
    const manifest: Manifest = {
      version: `${release}-wheellock-${key.hash.slice(0, 8)}`,
      sourceVersion: key.sourceVersion,
      buildMs: Date.now() - started,
    };
    await writeFile(join(staged, MANIFEST), JSON.stringify(manifest, null, 2));
    const dest = join(root, key.hash);
    await rm(dest, { recursive: true, force: true });
    await rename(staged, dest);
    log(
      // The step count calibrates EXPECTED_BUILD_STEPS (the progress percentage).
      `minimal guest kernel ${manifest.version} built in ${Math.round(manifest.buildMs / 1000)} s (${progress.compiledFiles} compile steps)`,
    );
    const k = await readCached(dest);
    if (!k) throw setupError(`cache entry ${dest} is incomplete`);
    return k;
  } finally {
    progress.end();
    await rm(work, { recursive: true, force: true });
  }
}

async function sourceDir(work: string): Promise<string> {
  const dirs = (await readdir(work, { withFileTypes: true })).filter(
    (e) => e.isDirectory() && e.name.startsWith("linux-source"),
  );
  if (dirs.length !== 1 || !dirs[0]) throw setupError(`${SOURCE_TARBALL} did not unpack one tree`);
  return join(work, dirs[0].name);
}

/**
 * olddefconfig silently drops an option whose dependencies are off; a guest without, say,
 * virtio-blk would only fail at boot. Fail the build instead.
 */
export function checkFragmentApplied(fragment: string, config: string): void {
  const set = new Map<string, string>();
  for (const line of config.split("\n")) {
    const m = /^(CONFIG_\w+)=(.*)$/.exec(line.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) set.set(m[1], m[2]);
  }
  const lost: string[] = [];
  for (const raw of fragment.split("\n")) {
    const line = raw.trim();
    const off = /^# (CONFIG_\w+) is not set$/.exec(line)?.[1];
    const on = /^(CONFIG_\w+)=(.*)$/.exec(line);
    if (off !== undefined && set.has(off)) lost.push(`${off} (wanted off)`);
    if (on?.[1] !== undefined && set.get(on[1]) !== on[2]) lost.push(line);
  }
  if (lost.length > 0) throw setupError(`options not applied by olddefconfig: ${lost.join(", ")}`);
}
