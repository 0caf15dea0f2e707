import { Command } from "commander";
import { ErrBudgetExceeded, ErrInvalidConfig } from "../errors.js";
import { addRemoteOption, connectSandbox, type RemoteFlags } from "./remote-flags.js";
import { interactive, streamed } from "./forward.js";
import { EXIT_BUDGET } from "./observe-flags.js";
import { hostTerminalSize } from "./tty.js";

interface ExecFlags extends RemoteFlags {
  interactive?: boolean;
  tty?: boolean;
  workdir?: string;
  user?: string;
}

export function execCommand(): Command {
  const cmd = new Command("exec")
    .usage("[flags] ID -- command [args...]")
    .option("-i, --interactive", "forward stdin to the command")
    .option("-t, --tty", "allocate a pseudo-terminal (-it for an interactive shell)")
    .option("-w, --workdir <dir>", "working directory in the guest")
    .option("-u, --user <user>", "user in the guest: uid, uid:gid or name")
    .argument("<id>", "sandbox id")
    .argument("[command...]", "command and arguments (after --)")
    .passThroughOptions();
  return addRemoteOption(cmd).action(async (id: string, command: string[], flags: ExecFlags) => {
    process.exitCode = await exec(id, command, flags);
  });
}

async function exec(id: string, command: string[], flags: ExecFlags): Promise<number> {
  // After the id, options pass through to the command, so `exec ID -- cmd` keeps its `--`.
  if (command[0] === "--") command = command.slice(1);
  const it = flags.tty === true && flags.interactive === true;
  if (it && !process.stdin.isTTY) throw new ErrInvalidConfig("-it requires a terminal on stdin");
  if (command.length === 0) {
    if (!it) throw new ErrInvalidConfig("command required (or use -it for an interactive shell)");
    command = ["/bin/sh"];
  }
  const sandbox = await connectSandbox(id, flags);
  const proc = sandbox.spawn(command, {
    ...(flags.workdir !== undefined ? { cwd: flags.workdir } : {}),
    ...(flags.user !== undefined ? { user: flags.user } : {}),
    ...(flags.tty ? { tty: hostTerminalSize() } : {}),
  });
  try {
    await proc.pid;
    return await (it ? interactive(proc) : streamed(proc, flags.interactive === true));
  } catch (err) {
    // A budget stopped the sandbox under the command: `run`'s status and one line.
    if (!(err instanceof ErrBudgetExceeded)) throw err;
    process.stderr.write(`wheellock: ${err.message}\n`);
    return EXIT_BUDGET;
  }
}
