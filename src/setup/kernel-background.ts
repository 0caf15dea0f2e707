/**
 * The minimal guest kernel built in the background: `setup` returns as soon as Debian's kernel
 * can serve (a first sandbox within minutes of a fresh clone, not after a 10+ minute compile),
 * and sandboxes switch to the minimal kernel by themselves once it is there.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makePrivateDir, ownEntryPoint } from "../paths.js";
import { withFileLock } from "../util/index.js";
import {
  buildStatusPath,
  describeBuild,
  readBuildStatusFile,
  writeBuildStatus,
} from "./kernel-build-status.js";
import { liveBuildLockHolder, whyMinimalKernelCannotBuild } from "./min-kernel.js";

/** The background build's output (appended; one build at a time holds the build lock). */
export function backgroundBuildLog(cacheDir: string): string {
  return join(cacheDir, "kernel-min", "build.log");
}

/** Left by a background build that finished, until a `run` has said that sandboxes switched. */
function switchNotePath(cacheDir: string): string {
  return join(cacheDir, "kernel-min", "switch-note");
}

/** Left by a background build that failed or was stopped, until a `run` has said so. */
function failedNotePath(cacheDir: string): string {
  return join(cacheDir, "kernel-min", "build-failed");
}

export interface BackgroundBuildOptions {
  /** argv after `node` for the builder; the default is wheellock's own kernel-build-main. */
  entry?: string[];
  /** Whether this host can build the kernel; the default checks packages and source. */
  whyCannotBuild?: () => Promise<string | undefined>;
}

/**
 * Starts `setup/kernel-build-main` detached (its own session, output to build.log) unless a
 * build already runs or the host cannot build the kernel; logs one line either way. The check
 * and the start happen under a lock, and the status file names the builder before the lock is
 * released: two `setup`s at once start one build.
 */
export async function startBackgroundKernelBuild(
  cacheDir: string,
  log: (m: string) => void,
  opts: BackgroundBuildOptions = {},
): Promise<void> {
  const root = makePrivateDir(join(cacheDir, "kernel-min"));
  await withFileLock(join(root, ".start.lock"), { timeoutMs: 60_000 }, async () => {
    const read = readBuildStatusFile(cacheDir);
    if (read.state === "running") {
      log(
        `minimal guest kernel: still building in the background, ${describeBuild(read.status)} (pid ${read.status.pid}; log: ${backgroundBuildLog(cacheDir)})`,
      );
      return;
    }
    if (read.state === "died") {
      rmSync(buildStatusPath(cacheDir), { force: true });
      log("minimal guest kernel: the previous background build stopped before it finished");
    }
    const holder = liveBuildLockHolder(root);
    if (holder !== undefined) {
      log(
        `minimal guest kernel: another process (pid ${holder}) is building it; sandboxes boot Debian's kernel until it is ready`,
      );
      return;
    }
    const cannot = await (opts.whyCannotBuild ?? whyMinimalKernelCannotBuild)();
    if (cannot !== undefined) {
      log(`minimal guest kernel skipped (${cannot}); sandboxes boot Debian's kernel`);
      return;
    }
    rmSync(failedNotePath(cacheDir), { force: true });
    const pid = spawnBuilder(cacheDir, opts.entry ?? ownEntryPoint("setup/kernel-build-main"));
    // Until the builder writes its own (after loading and taking the build lock).
    if (pid !== undefined)
      writeBuildStatus(cacheDir, { pid, startedAtMs: Date.now(), compiledFiles: 0 });
    log(
      `minimal guest kernel: building in the background at the lowest CPU priority (pid ${pid ?? "?"}, about 10 min on 2 cores; log: ${backgroundBuildLog(cacheDir)}; kill ${pid ?? "PID"} stops it). ` +
        "Sandboxes boot Debian's kernel until it is ready, then switch to it by themselves.",
    );
  });
}

function spawnBuilder(cacheDir: string, entry: string[]): number | undefined {
  const out = openSync(backgroundBuildLog(cacheDir), "a", 0o600);
  try {
    const child = spawn(process.execPath, entry, {
      detached: true,
      stdio: ["ignore", out, out],
      env: { ...process.env, WHEELLOCK_CACHE_DIR: cacheDir },
    });
    child.on("error", () => undefined);
    child.unref();
    return child.pid;
  } finally {
    closeSync(out);
  }
}

/** Called by the builder when its kernel is in the cache. */
export function noteKernelSwitch(cacheDir: string, version: string): void {
  writeFileSync(switchNotePath(cacheDir), `${version}\n`, { mode: 0o600 });
}

/** Called by the builder when it fails or is stopped: the next `run` says so once. */
export function noteKernelBuildFailed(cacheDir: string, why: string): void {
  try {
    writeFileSync(failedNotePath(cacheDir), `${why}\n`, { mode: 0o600 });
  } catch {
    // The build log says it too.
  }
}

/** Called by the builder as it exits: the status file goes if it still names this process. */
export function clearOwnBuildStatus(cacheDir: string, pid = process.pid): void {
  const read = readBuildStatusFile(cacheDir);
  if (read.state !== "none" && read.status.pid === pid)
    rmSync(buildStatusPath(cacheDir), { force: true });
}

/**
 * A line for the CLI to print before a sandbox starts, or undefined: the background build's
 * progress while it runs; once, that sandboxes now boot the minimal kernel, or that the build
 * failed or died. Only a few stat calls: it runs on every `run`.
 */
export async function kernelSwitchNotice(
  cacheDir: string,
  opts: { ownKernelBuilt?: () => Promise<boolean> } = {},
): Promise<string | undefined> {
  const read = readBuildStatusFile(cacheDir);
  const logHint = `log: ${backgroundBuildLog(cacheDir)}`;
  if (read.state === "running") {
    // A build while this version's kernel is there is another version's (two installs on one
    // machine): this sandbox boots its own minimal kernel, nothing to say.
    if (await opts.ownKernelBuilt?.()) return undefined;
    return `minimal guest kernel building in the background, ${describeBuild(read.status)}; this sandbox boots Debian's kernel (slower)`;
  }
  if (read.state === "died") {
    rmSync(buildStatusPath(cacheDir), { force: true });
    return `the background build of the minimal guest kernel stopped before it finished (${logHint}); sandboxes boot Debian's kernel; \`wheellock setup\` starts it again`;
  }
  const failed = takeNote(failedNotePath(cacheDir));
  if (failed !== undefined)
    return `the background build of the minimal guest kernel failed: ${failed} (${logHint}); sandboxes boot Debian's kernel; \`wheellock setup\` tries again`;
  if (takeNote(switchNotePath(cacheDir)) !== undefined)
    return "the minimal guest kernel is built: sandboxes boot it from now on (faster starts)";
  return undefined;
}

/** A note's text, removing it (each is said once); undefined when there is none. */
function takeNote(path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  let text = "";
  try {
    text = readFileSync(path, "utf8").trim();
  } catch {
    // Unreadable: still say it once.
  }
  rmSync(path, { force: true });
  return text;
}
