#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { imageCommand } from "./image.js";
import { volumeCommand } from "./volume.js";
import { pullCommand } from "./pull.js";
import { runCommand } from "./run.js";
import { setupCommand } from "./setup.js";
import { versionCommand, packageVersion } from "./version.js";
import { lifecycleCommands } from "./lifecycle.js";
import { completionCommand } from "./completion.js";
import { normalizeRmFlag } from "./run-long-lived.js";

/** One line on stderr, no stack trace (unless WHEELLOCK_DEBUG=1), non-zero exit. */
function reportError(err: unknown): void {
  if (process.env.WHEELLOCK_DEBUG === "1" && err instanceof Error) {
    process.stderr.write(`${err.stack ?? err.message}\n`);
  } else {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`wheellock: ${message}\n`);
  }
}

async function main(argv: string[]): Promise<void> {
  const program = new Command("wheellock")
    .enablePositionalOptions()
    .description("run untrusted code in throwaway micro-VMs under host-side policy")
    .version(packageVersion(), "-v, --version")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      // Commander's own parse errors become our one-line format.
      writeErr: (str) => process.stderr.write(str.replace(/^error: /, "wheellock: ")),
    });
  program.addCommand(runCommand().exitOverride());
  program.addCommand(setupCommand().exitOverride());
  program.addCommand(versionCommand().exitOverride());
  program.addCommand(pullCommand().exitOverride());
  program.addCommand(imageCommand().exitOverride());
  program.addCommand(volumeCommand().exitOverride());
  for (const cmd of lifecycleCommands()) program.addCommand(cmd.exitOverride());
  program.addCommand(completionCommand(program).exitOverride());
  // addCommand() does not pass settings down: every subcommand gets the one-line error format.
  const everywhere = (cmd: Command): void => {
    cmd.exitOverride().configureOutput(program.configureOutput());
    cmd.commands.forEach(everywhere);
  };
  program.commands.forEach(everywhere);
  try {
    await program.parseAsync(normalizeRmFlag(argv));
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version output exit 0; parse errors were already printed by commander.
      process.exitCode = err.exitCode;
      return;
    }
    reportError(err);
    process.exitCode = 1;
  }
}

await main(process.argv);
