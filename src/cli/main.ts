#!/usr/bin/env -S node --
// Start-up cost is part of every CLI call: the bare `version` and `--help` are answered from
// the command table without loading commander or any command's module, and otherwise only the
// invoked command's module is loaded (commands.ts, program.ts; docs/PERFORMANCE.md). In the
// build, the rest of the CLI is one CommonJS bundle, compiled with a V8 code cache.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { runCli } from "./cli.js";
import { loadWithCodeCache } from "./code-cache.js";
import { findCommand } from "./commands.js";
import { topLevelHelp } from "./help.js";
import { exitStatus, watchOutput } from "./output.js";
import { cacheDir } from "../paths.js";
import { packageVersion, versionLine } from "./version.js";

/** What a bare `wheellock ARG` answers without loading commander. */
const IMMEDIATE = new Map<string, () => string>([
  ["--help", topLevelHelp],
  ["-h", topLevelHelp],
  ["help", topLevelHelp],
  ["--version", () => `${packageVersion()}\n`],
  ["-v", () => `${packageVersion()}\n`],
  ["version", versionLine],
]);

/** Where the build puts the bundle of cli.ts (scripts/bundle-cli.mjs): next to main.js. */
const BUNDLE = join(fileURLToPath(new URL(".", import.meta.url)), "cli.cjs");

/**
 * The code cache's tag for these arguments: the command, and whether it only prints its help
 * (a different set of functions to keep compiled).
 */
function cacheTag(args: readonly string[]): string {
  const command = findCommand(args.find((a) => !a.startsWith("-")))?.name ?? "none";
  return args.includes("--help") || args.includes("-h") ? `${command}-help` : command;
}

async function main(argv: readonly string[]): Promise<number> {
  const args = argv.slice(2);
  const immediate = args.length === 1 ? IMMEDIATE.get(args[0] as string) : undefined;
  if (immediate) {
    watchOutput();
    process.stdout.write(immediate());
    return exitStatus(0);
  }
  if (!existsSync(BUNDLE)) return (await import("./cli.js")).runCli(argv);
  // WHEELLOCK_CODE_CACHE=0 compiles from source every time (comparisons, debugging).
  const cache = process.env.WHEELLOCK_CODE_CACHE === "0" ? undefined : join(cacheDir(), "code");
  const cli = loadWithCodeCache<{ runCli: typeof runCli }>(BUNDLE, cache, cacheTag(args));
  const status = await cli.exports.runCli(argv);
  // Only after a call that did its job: a failed one (a usage error, say) may have stopped
  // long before the code its command usually runs, and a cache, once written, stays.
  if (status === 0) cli.save();
  return status;
}

// Not a top-level await: the build also makes this file CommonJS (main.cjs, the `wheellock`
// command), which Node starts without its ES module loader.
void main(process.argv).then((status) => {
  process.exitCode = status;
});
