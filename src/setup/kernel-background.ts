/**
 * The minimal guest kernel built in the background: `setup` returns as soon as Debian's kernel
 * can serve (a first sandbox within minutes of a fresh clone, not after a 10+ minute compile),
 * and sandboxes switch to the minimal kernel by themselves once it is there.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makePrivateDir, ownEntryPoint } from "../paths.js";
import { describeBuild, readBuildStatus } from "./kernel-build-status.js";
import { whyMinimalKernelCannotBuild } from "./min-kernel.js";

/** The background build's output (appended; one build at a time holds the build lock). */
export function backgroundBuildLog(cacheDir: string): string {
  return join(cacheDir, "kernel-min", "build.log");
}

/** Left by a background build that finished, until a `run` has said that sandboxes switched. */
function switchNotePath(cacheDir: string): string {
  return join(cacheDir, "kernel-min", "switch-note");
}

export interface BackgroundBuildOptions {
  /** argv after `node` for the builder; the default is wheellock's own kernel-build-main. */
  entry?: string[];
  /** Whether this host can build the kernel; the default checks packages and source. */
  whyCannotBuild?: () => Promise<string | undefined>;
}

/**
 * Starts `setup/kernel-build-main` detached (its own session, output to build.log) unless a
 * build already runs or the host cannot build the kernel; logs one line either way.
 */
export async function startBackgroundKernelBuild(
  cacheDir: string,
  log: (m: string) => void,
  opts: BackgroundBuildOptions = {},
): Promise<void> {
  const running = readBuildStatus(cacheDir);
  if (running) {
    log(
      `minimal guest kernel: still building in the background (pid ${running.pid}, ${describeBuild(running)}; log: ${backgroundBuildLog(cacheDir)})`,
    );
    return;
  }
  const cannot = await (opts.whyCannotBuild ?? whyMinimalKernelCannotBuild)();
  if (cannot !== undefined) {
    log(`minimal guest kernel skipped (${cannot}); sandboxes boot Debian's kernel`);
    return;
  }
  makePrivateDir(join(cacheDir, "kernel-min"));
  const logPath = backgroundBuildLog(cacheDir);
  const out = openSync(logPath, "a", 0o600);
  try {
    const child = spawn(process.execPath, opts.entry ?? ownEntryPoint("setup/kernel-build-main"), {
      detached: true,
      stdio: ["ignore", out, out],
      env: { ...process.env, WHEELLOCK_CACHE_DIR: cacheDir },
    });
    child.on("error", () => undefined);
    child.unref();
    log(
      `minimal guest kernel: building in the background (pid ${child.pid ?? "?"}, about 10 min on 2 cores; log: ${logPath}). ` +
        "Sandboxes boot Debian's kernel until it is ready, then switch to it by themselves.",
    );
  } finally {
    closeSync(out);
  }
}

/** Called by the builder when its kernel is in the cache. */
export function noteKernelSwitch(cacheDir: string, version: string): void {
  writeFileSync(switchNotePath(cacheDir), `${version}\n`, { mode: 0o600 });
}

/**
 * A line for the CLI to print before a sandbox starts, or undefined: the background build's
 * progress while it runs, once a note that sandboxes now boot the minimal kernel. Only a few
 * stat calls: it runs on every `run`.
 */
export function kernelSwitchNotice(cacheDir: string): string | undefined {
  const running = readBuildStatus(cacheDir);
  if (running)
    return `minimal guest kernel still building in the background (${describeBuild(running)}); this sandbox boots Debian's kernel (slower)`;
  const note = switchNotePath(cacheDir);
  if (!existsSync(note)) return undefined;
  rmSync(note, { force: true });
  return "the minimal guest kernel is built: sandboxes boot it from now on (faster starts)";
}
