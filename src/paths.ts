import { existsSync, mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Where wheellock keeps things. Cache: rebuildable artefacts (kernel, agent, images).
 * Data: things that must survive (CA key, sandbox records, volumes).
 */
export function cacheDir(): string {
  const override = process.env.WHEELLOCK_CACHE_DIR;
  if (override) return override;
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), ".cache"), "wheellock");
}

export function dataDir(): string {
  const override = process.env.WHEELLOCK_DATA_DIR;
  if (override) return override;
  const xdg = process.env.XDG_DATA_HOME;
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), ".local", "share"), "wheellock");
}

/** Per-process scratch space for running sandboxes (sockets, upper disks, logs). */
export function runDir(): string {
  const override = process.env.WHEELLOCK_RUN_DIR;
  if (override) return override;
  return join(dataDir(), "run");
}

let packageRootMemo: string | undefined;

/**
 * The repository root (where guest/ and package.json live): the nearest folder above this
 * module that holds a package.json. Not a fixed depth: this code runs as src/paths.ts,
 * dist/paths.js and inside the CLI's bundles (dist/cli/main.js, main.cjs and cli.cjs, bundle-cli.mjs).
 */
export function packageRoot(): string {
  if (packageRootMemo !== undefined) return packageRootMemo;
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return (packageRootMemo = dir);
    if (dirname(dir) === dir)
      throw new Error(`cannot find wheellock's package.json above ${start}`);
  }
}

/**
 * argv (after `node`) that runs one of wheellock's own entry points (`supervisor/main`,
 * `setup/kernel-build-main`) from the same tree as this code: the built one (no tsx at run
 * time), or the source through tsx when wheellock itself runs from source (tests, development).
 */
export function ownEntryPoint(module: string): string[] {
  const fromSource = import.meta.url.endsWith(".ts");
  const path = fromSource
    ? join(packageRoot(), "src", `${module}.ts`)
    : join(packageRoot(), "dist", `${module}.js`);
  if (!existsSync(path)) throw new Error(`cannot find wheellock's ${module} (${path})`);
  return fromSource ? ["--import", "tsx", path] : [path];
}

/**
 * Creates a wheellock directory, and any missing parents, readable by this user only (0700;
 * the umask can only take bits away): records, volumes, keys, images and build scratch are
 * nobody else's business. A directory that exists keeps its mode. Every directory wheellock
 * makes under its data, cache and run dirs goes through here.
 */
export function makePrivateDir(path: string): string {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  return path;
}
