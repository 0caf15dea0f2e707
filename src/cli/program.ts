/**
 * The commander program for everything main.ts does not answer itself: only the invoked
 * command's module is loaded; the others stand in as bare names, enough for commander's
 * "unknown command" suggestions and for `help COMMAND`.
 */
import { Command, CommanderError } from "commander";
import { COMMANDS, findCommand, loadCommand, type CommandEntry } from "./commands.js";
import { normalizeRmFlag } from "./flags.js";
import { PROGRAM_SUMMARY, topLevelHelp } from "./help.js";
import { outputFailed } from "./output.js";
import { packageVersion } from "./version.js";

/** One line on stderr, no stack trace (unless WHEELLOCK_DEBUG=1). */
function reportError(err: unknown): void {
  if (process.env.WHEELLOCK_DEBUG === "1" && err instanceof Error) {
    process.stderr.write(`${err.stack ?? err.message}\n`);
  } else {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`wheellock: ${message}\n`);
  }
}

/** The command the arguments name: the first operand, or the one after `help`. */
function invokedCommand(args: readonly string[]): CommandEntry | undefined {
  const operands = args.filter((a) => !a.startsWith("-"));
  return findCommand(operands[0] === "help" ? operands[1] : operands[0]);
}

function standIn(command: CommandEntry): Command {
  return new Command(command.name).description(command.summary).aliases(command.aliases);
}

async function buildProgram(invoked: CommandEntry | undefined): Promise<Command> {
  const program = new Command("wheellock")
    .enablePositionalOptions()
    .description(PROGRAM_SUMMARY)
    .version(packageVersion(), "-v, --version")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      // Commander's own parse errors become our one-line format.
      writeErr: (str) => process.stderr.write(str.replace(/^error: /, "wheellock: ")),
    });
  // The help `wheellock` prints without a command, or after an unknown one, is main.ts's.
  program.helpInformation = topLevelHelp;
  for (const command of COMMANDS) {
    program.addCommand(command === invoked ? await loadCommand(command) : standIn(command));
  }
  // addCommand() does not pass settings down: every subcommand gets the one-line error format.
  const everywhere = (cmd: Command): void => {
    cmd.exitOverride().configureOutput(program.configureOutput());
    cmd.commands.forEach(everywhere);
  };
  program.commands.forEach(everywhere);
  return program;
}

/** Parses `argv` (process.argv form) and runs the command; resolves to the exit status. */
export async function runProgram(argv: readonly string[]): Promise<number> {
  try {
    const program = await buildProgram(invokedCommand(argv.slice(2)));
    await program.parseAsync(normalizeRmFlag(argv));
    return Number(process.exitCode ?? 0);
  } catch (err) {
    // Help and version output exit 0; parse errors were already printed by commander.
    if (err instanceof CommanderError) return err.exitCode;
    // A failure that follows from the reader going away (EPIPE) is not news: exit quietly.
    if (!outputFailed()) reportError(err);
    return 1;
  }
}
