/**
 * `run -d` and `run --rm=false`: a sandbox that outlives the command. `-d` starts a detached
 * supervisor and prints the id; `--rm=false` makes this process the supervisor, in the
 * foreground, until Ctrl-C or `wheellock kill`.
 */
import { Command } from "commander";
import { resolve as resolvePath } from "node:path";
import {
  parseDurationSeconds,
  parsePublish,
  planSandbox,
  type SandboxOptions,
} from "../config/index.js";
import { ErrInvalidConfig } from "../errors.js";
import { withCheckpointDefaults } from "../sandbox/index.js";
import { startSupervisor, supervise, type SuperviseRequest } from "../supervisor/index.js";
import { collect } from "./flags.js";

export interface LongLivedFlags {
  detach?: boolean;
  rm?: boolean;
  publish: string[];
  address: string[];
  gracefulShutdown?: number;
  events?: string;
  interactive?: boolean;
  tty?: boolean;
}

export function addLongLivedOptions(cmd: Command): void {
  cmd
    .option(
      "-d, --detach",
      "start the sandbox in the background and print its id (implies --rm=false)",
    )
    // `--rm=false` (the reference CLI's spelling) is rewritten to --no-rm before parsing
    // (normalizeRmFlag in flags.ts), so `--rm` never swallows the command that follows it.
    .option("--rm", "remove the sandbox when the command ends (default)")
    .option("--no-rm", "keep the sandbox running after the command (also --rm=false)")
    .option(
      "-p, --publish <[local:]remote>",
      "forward a host port to a guest port (repeatable)",
      collect,
      [],
    )
    .option("--address <ip>", "host address for -p (repeatable; default 127.0.0.1)", collect, [])
    .option(
      "--graceful-shutdown <duration>",
      "on stop, give running commands this long after SIGTERM (e.g. 10s; default 0)",
      (v: string) => parseDurationSeconds(v, "--graceful-shutdown"),
    );
}

export function isLongLived(flags: LongLivedFlags): boolean {
  return flags.detach === true || flags.rm === false;
}

export async function runLongLived(
  command: string[],
  flags: LongLivedFlags,
  options: SandboxOptions,
): Promise<number> {
  if (flags.detach && (flags.tty || flags.interactive)) {
    throw new ErrInvalidConfig("--detach cannot be combined with -t/--tty or -i/--interactive");
  }
  const request: SuperviseRequest = {
    // A long-lived sandbox has no deadline unless one was asked for (--timeout).
    plan: planSandbox(
      withCheckpointDefaults({ ...options, timeoutSeconds: options.timeoutSeconds ?? 0 }),
    ),
    command,
    ports: parsePublish(flags.publish, flags.address),
    gracefulShutdownMs: Math.round((flags.gracefulShutdown ?? 0) * 1000),
    ...(flags.events !== undefined ? { eventsPath: resolvePath(flags.events) } : {}),
  };
  if (flags.detach) {
    // The supervisor gets the plan (secrets included) on a pipe, never in its argv.
    process.stdout.write(`${await startSupervisor(request)}\n`);
    return 0;
  }
  return supervise(request, {
    echo: { stdout: process.stdout, stderr: process.stderr },
    onReady: (record) => {
      process.stderr.write(
        `Sandbox ${record.id} is running\n` +
          `  Connect: wheellock exec ${record.id} -it sh\n` +
          `  Stop:    wheellock kill ${record.id}\n`,
      );
      for (const p of record.ports) {
        process.stderr.write(`Forwarding ${p.address}:${p.localPort} -> sandbox:${p.remotePort}\n`);
      }
    },
  });
}
