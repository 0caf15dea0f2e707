#!/usr/bin/env node
/**
 * The background minimal-kernel build that `wheellock setup` starts: builds (or waits for
 * another process's build of) the kernel, then leaves a note so the next `run` says sandboxes
 * switched. Its output is the build log.
 */
import { cacheDir } from "../paths.js";
import { noteKernelSwitch } from "./kernel-background.js";
import { ensureMinimalKernel } from "./min-kernel.js";

const log = (m: string): void => {
  process.stdout.write(`${new Date().toISOString()} ${m}\n`);
};

try {
  const dir = cacheDir();
  const kernel = await ensureMinimalKernel(dir, log);
  if (kernel) noteKernelSwitch(dir, kernel.version);
} catch (err) {
  log(
    `minimal guest kernel build failed: ${(err as Error).message}; sandboxes keep Debian's kernel`,
  );
  process.exitCode = 1;
}
