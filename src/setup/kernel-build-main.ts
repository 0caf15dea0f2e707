#!/usr/bin/env node
/**
 * The background minimal-kernel build that `wheellock setup` starts: builds (or waits for
 * another process's build of) the kernel. Its output is the build log.
 */
import { cacheDir } from "../paths.js";
import { runKernelBuilder } from "./kernel-builder.js";
import { ensureMinimalKernel } from "./min-kernel.js";

const log = (m: string): void => {
  process.stdout.write(`${new Date().toISOString()} ${m}\n`);
};

const dir = cacheDir();
await runKernelBuilder(dir, log, () => ensureMinimalKernel(dir, log));
