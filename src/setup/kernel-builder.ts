/**
 * The body of the detached background builder (setup/kernel-build-main): runs the build, then
 * leaves a note so the next `run` says that sandboxes switched or that the build failed. It
 * leads its own process group (a detached spawn), so `kill PID` stops make and the compilers
 * with it instead of leaving them compiling into a work dir nobody will use.
 */
import type { GuestKernel } from "./kernel.js";
import {
  clearOwnBuildStatus,
  noteKernelBuildFailed,
  noteKernelSwitch,
} from "./kernel-background.js";
import { removeOwnBuildDirs } from "./min-kernel.js";

const STOP_SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP"] as const;

export async function runKernelBuilder(
  cacheDir: string,
  log: (m: string) => void,
  build: () => Promise<GuestKernel | undefined>,
): Promise<void> {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) return; // the echo of the group kill below
    stopping = true;
    log(`minimal guest kernel build stopped (${signal}); sandboxes keep Debian's kernel`);
    noteKernelBuildFailed(cacheDir, `stopped by ${signal}`);
    clearOwnBuildStatus(cacheDir);
    try {
      process.kill(-process.pid, "SIGTERM");
    } catch {
      // Not a group leader (started by hand): its children go with the terminal.
    }
    removeOwnBuildDirs(cacheDir);
    process.exit(1);
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  try {
    const kernel = await build();
    if (kernel) noteKernelSwitch(cacheDir, kernel.version);
    else noteKernelBuildFailed(cacheDir, "this host cannot build it");
  } catch (err) {
    const why = (err as Error).message;
    log(`minimal guest kernel build failed: ${why}; sandboxes keep Debian's kernel`);
    noteKernelBuildFailed(cacheDir, why);
    process.exitCode = 1;
  } finally {
    clearOwnBuildStatus(cacheDir);
    for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
  }
}
