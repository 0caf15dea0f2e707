/**
 * Everything past main.ts: commander and the invoked command. The build bundles this file
 * into dist/cli/cli.cjs, which main.ts loads with a V8 code cache (code-cache.ts); from
 * source, or a tsc-only build, main.ts imports it directly.
 */
import { exitStatus, watchOutput } from "./output.js";
import { runProgram } from "./program.js";

/** Runs the command `argv` (process.argv form) names; resolves to the process's exit status. */
export async function runCli(argv: readonly string[]): Promise<number> {
  watchOutput();
  return exitStatus(await runProgram(argv));
}
