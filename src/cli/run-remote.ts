/**
 * `run --remote`: the sandbox starts on a node (the freer of two when several are given). In
 * the foreground the command's streams, terminal and exit status come back as with a local
 * run, and the sandbox is removed at the end; `-d` leaves it running there (its command, if
 * any, logged on the node as `run -d` logs it) and prints its id, which names its node.
 */
import type { SandboxOptions } from "../config/index.js";
import { ErrInvalidConfig, ErrTimeout } from "../errors.js";
import { openEventsFile, writeEventsFile } from "../sandbox/index.js";
import { createRemote, resolveRemote, type RemoteOptions } from "../sdk/index.js";
import { hostTerminalSize } from "./tty.js";
import { interactive, streamed } from "./forward.js";

export interface RemoteRunFlags {
  detach?: boolean;
  rm?: boolean;
  publish: string[];
  entrypoint?: string;
  events?: string;
  interactive?: boolean;
  tty?: boolean;
}

/** Exit status when the sandbox's --timeout fires (as timeout(1) does). */
const EXIT_TIMEOUT = 124;

export async function runRemote(
  command: string[],
  flags: RemoteRunFlags,
  options: SandboxOptions,
  remoteOptions: RemoteOptions,
): Promise<number> {
  const remote = resolveRemote(remoteOptions);
  if (!remote) throw new ErrInvalidConfig("--remote needs a node URL");
  if (flags.publish.length > 0)
    throw new ErrInvalidConfig("-p with --remote: use `wheellock port-forward --remote ID PORT`");
  if (flags.entrypoint !== undefined)
    throw new ErrInvalidConfig("--entrypoint with --remote: give the command after --");
  if (flags.rm === false && !flags.detach)
    throw new ErrInvalidConfig("--rm=false with --remote: use -d (the sandbox stays on its node)");
  if (flags.detach) {
    if (flags.tty || flags.interactive)
      throw new ErrInvalidConfig("--detach cannot be combined with -t/--tty or -i/--interactive");
    const sandbox = await createRemote(
      { ...options, timeoutSeconds: options.timeoutSeconds ?? 0 },
      remote,
      command,
    );
    process.stdout.write(`${sandbox.id}\n`);
    return 0;
  }
  if (command.length === 0)
    throw new ErrInvalidConfig(
      "command required with --remote: wheellock run --remote URL -- command",
    );
  if (flags.tty && flags.interactive && !process.stdin.isTTY)
    throw new ErrInvalidConfig("-it requires a terminal on stdin");
  const eventsOut = flags.events !== undefined ? await openEventsFile(flags.events) : undefined;
  const sandbox = await createRemote(options, remote).catch((err: unknown) => {
    eventsOut?.end();
    throw err;
  });
  const eventsWritten = eventsOut ? writeEventsFile(sandbox.events(), eventsOut) : undefined;
  try {
    const proc = sandbox.spawn(command, flags.tty ? { tty: hostTerminalSize() } : {});
    await proc.pid;
    return await (flags.tty && flags.interactive
      ? interactive(proc)
      : streamed(proc, flags.interactive === true));
  } catch (err) {
    if (err instanceof ErrTimeout) {
      process.stderr.write(`wheellock: ${err.message}\n`);
      return EXIT_TIMEOUT;
    }
    throw err;
  } finally {
    await sandbox.close();
    await eventsWritten?.catch(() => undefined);
  }
}
