#!/usr/bin/env node
// Start-up cost is part of every CLI call: the bare `version` and `--help` are answered from
// the command table without loading commander or any command's module, and otherwise only the
// invoked command's module is loaded (commands.ts, program.ts; docs/PERFORMANCE.md).
import { topLevelHelp } from "./help.js";
import { exitStatus, watchOutput } from "./output.js";
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

async function main(argv: readonly string[]): Promise<number> {
  const args = argv.slice(2);
  const immediate = args.length === 1 ? IMMEDIATE.get(args[0] as string) : undefined;
  if (immediate) {
    process.stdout.write(immediate());
    return 0;
  }
  const { runProgram } = await import("./program.js");
  return runProgram(argv);
}

watchOutput();
process.exitCode = exitStatus(await main(process.argv));
