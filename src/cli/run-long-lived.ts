/**
 * `run -d` and `run --rm=false`: a sandbox that outlives the command. `-d` starts a detached
 * supervisor and prints the id; `--rm=false` makes this process the supervisor, in the
 * foreground, until Ctrl-C or `wheellock kill`.
 */
import { Command, Option } from "commander";
import { parseDurationSeconds, type SandboxOptions } from "../config/index.js";
import { ErrInvalidConfig } from "../errors.js";
import { renameSync } from "node:fs";
import { join } from "node:path";
import { sandboxDir } from "../state/index.js";
import {
  OPTIONS_STDIN_FLAG,
  READY_PREFIX,
  startDetached,
  supervise,
  SUPERVISOR_FLAG,
  SUPERVISOR_LOG_ENV,
} from "../supervisor/index.js";

/** Tells a supervisor that `run -d` writes the secrets to its stdin. */
const SECRETS_STDIN_FLAG = "--secrets-stdin";
import { collect } from "./flags.js";
import { withoutSecretArgs } from "./intercept-flags.js";
import { releaseStdout } from "./output.js";
import { parsePublish } from "./publish.js";

export interface LongLivedFlags {
  detach?: boolean;
  rm?: boolean;
  publish: string[];
  address: string[];
  gracefulShutdown?: number;
  supervisor?: boolean;
  /** Hidden: the supervisor reads its secrets from stdin (never from argv). */
  secretsStdin?: boolean;
  /** Hidden: the supervisor reads all its SandboxOptions from stdin (SDK startDetached). */
  optionsStdin?: boolean;
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
    )
    .addOption(new Option(SUPERVISOR_FLAG).hideHelp())
    .addOption(new Option(SECRETS_STDIN_FLAG).hideHelp())
    .addOption(new Option(OPTIONS_STDIN_FLAG).hideHelp());
}

export function isLongLived(flags: LongLivedFlags): boolean {
  return flags.detach === true || flags.rm === false || flags.supervisor === true;
}

export async function runLongLived(
  command: string[],
  flags: LongLivedFlags,
  options: SandboxOptions,
): Promise<number> {
  if (flags.detach && (flags.tty || flags.interactive)) {
    throw new ErrInvalidConfig("--detach cannot be combined with -t/--tty or -i/--interactive");
  }
  const ports = parsePublish(flags.publish, flags.address);
  if (flags.detach && !flags.supervisor) {
    // Secrets travel on a pipe: a supervisor's argv is visible to every user (ps), and the
    // state record and logs must never hold them.
    const secrets = options.secrets ?? {};
    const hasSecrets = Object.keys(secrets).length > 0;
    const id = await startDetached(
      withoutSecretArgs(process.argv.slice(process.argv.indexOf("run") + 1)),
      hasSecrets ? { flags: [SECRETS_STDIN_FLAG], stdin: JSON.stringify(secrets) } : {},
    );
    process.stdout.write(`${id}\n`);
    return 0;
  }
  const gracefulShutdownMs = Math.round((flags.gracefulShutdown ?? 0) * 1000);
  return supervise({
    options,
    command,
    ports,
    gracefulShutdownMs,
    ...(flags.events !== undefined ? { eventsPath: flags.events } : {}),
    ...(flags.supervisor ? {} : { echo: { stdout: process.stdout, stderr: process.stderr } }),
    onReady: (record) => {
      if (flags.supervisor) {
        // Keep our stderr (later warnings, a crash's stack) as sandboxes/<id>/supervisor.log.
        const errLog = process.env[SUPERVISOR_LOG_ENV];
        if (errLog) renameSync(errLog, join(sandboxDir(record.id), "supervisor.log"));
        process.stdout.write(`${READY_PREFIX}${record.id}\n`);
        // The `run -d` that reads this goes away: later writes must not stop the supervisor.
        releaseStdout();
        return;
      }
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
