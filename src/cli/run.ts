import { Command, Option } from "commander";
import {
  DEFAULT_IMAGE,
  FORK_MOUNTS_MODES,
  ENV_DEFAULT_IMAGE,
  mergeEnv,
  type ForkMountsMode,
  type SandboxOptions,
} from "../config/index.js";
import { ErrBudgetExceeded, ErrInvalidConfig, ErrTimeout } from "../errors.js";
import type { VmSandbox } from "../sandbox/index.js";
import { openEventsFile, writeEventsFile } from "../sandbox/index.js";
import { Sandbox } from "../sdk/index.js";
import { guestKernelNotice } from "../setup/index.js";
import { exitOnSignal, exitOnUnhandledSignal, SignalHandling } from "../util/index.js";
import { collect, oneOf, positiveInteger, positiveNumber } from "./flags.js";
import { addNetworkOptions, networkSandboxOptions, type NetworkFlags } from "./network-flags.js";
import {
  addVolumeOptions,
  reportKeptOverlays,
  volumeSandboxOptions,
  type VolumeFlags,
} from "./volume-flags.js";
import {
  addInterceptOptions,
  interceptSandboxOptions,
  parseSecretFlags,
  type InterceptFlags,
} from "./intercept-flags.js";
import { ApprovalPrompt } from "./approve-prompt.js";
import { interactive, streamed } from "./forward.js";
import {
  addObserveOptions,
  EXIT_BUDGET,
  observeSandboxOptions,
  type ObserveFlags,
} from "./observe-flags.js";
import { addRemoteOption, remoteOptions, type RemoteFlags } from "./remote-flags.js";
import { hostTerminalSize } from "./tty.js";
import {
  addImageOptions,
  longLivedArgv,
  prepareRunImage,
  runArgv,
  type RunImageFlags,
} from "./run-image.js";
import {
  addLongLivedOptions,
  isLongLived,
  runLongLived,
  type LongLivedFlags,
} from "./run-long-lived.js";

interface RunFlags extends NetworkFlags, InterceptFlags, VolumeFlags, ObserveFlags {
  /** Commander's negatable `--no-snapshot`: false when given. */
  snapshot?: boolean;
  fromCheckpoint?: string;
  forkMounts?: ForkMountsMode;
  image?: string;
  cpus?: number;
  memory?: number;
  diskSize?: number;
  timeout?: number;
  env: string[];
  envFile: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  privileged?: boolean;
  accel?: "auto" | "kvm" | "tcg";
  kernel?: string;
  interactive?: boolean;
  tty?: boolean;
}

/** `run` flags, with those of long-lived sandboxes (run-long-lived.ts). */
type RunAllFlags = RunFlags & LongLivedFlags & RunImageFlags & RemoteFlags;

/** Exit status when the sandbox's --timeout fires (as timeout(1) does). */
const EXIT_TIMEOUT = 124;

// passThroughOptions: in `run ls -la`, options after the command are the command's own, as with
// `docker run`.
export function runCommand(): Command {
  const cmd = new Command("run")
    .usage("[flags] [-- command [args...]]")
    .option("--image <ref>", "image to run (default: the locally built default image)")
    .option("--cpus <n>", "virtual CPUs (may be fractional)", positiveNumber("--cpus"))
    .option("--memory <mb>", "memory in MB (default 512)", positiveInteger("--memory"))
    .option(
      "--disk-size <mb>",
      "writable disk size in MB (default 5120)",
      positiveInteger("--disk-size"),
    )
    .option(
      "--timeout <s>",
      "stop the sandbox after this many seconds (default 300, 0 = none)",
      positiveInteger("--timeout"),
    )
    .option(
      "-e, --env <K=V|K>",
      "set an environment variable (repeatable; bare K copies the host's)",
      collect,
      [],
    )
    .option("--env-file <path>", "read KEY=VALUE lines from a file (repeatable)", collect, [])
    .option("-w, --workdir <dir>", "working directory in the guest")
    .option("-u, --user <user>", "user in the guest: uid, uid:gid or name")
    .option("--hostname <name>", "guest hostname (default: the sandbox id)")
    .option("--privileged", "skip in-guest hardening (seccomp, capability drop, no_new_privs)")
    .option("--no-snapshot", "cold boot even when a memory snapshot of this boot exists")
    .option(
      "--from-checkpoint <name>",
      "start as a copy of a checkpoint (`wheellock checkpoint`): its memory, files and processes",
    )
    .addOption(
      new Option(
        "--fork-mounts <mode>",
        "with --from-checkpoint: the checkpoint's read-write host mounts become a private " +
          "overlay (default), read-only, or shared (written through)",
      ).argParser(oneOf("--fork-mounts", FORK_MOUNTS_MODES)),
    )
    .addOption(
      new Option("--accel <kind>", "accelerator").argParser(
        oneOf("--accel", ["auto", "kvm", "tcg"] as const),
      ),
    )
    .option("--kernel <path>", "guest kernel to boot instead of the prepared one")
    .option("-i, --interactive", "forward stdin to the command")
    .option("-t, --tty", "allocate a pseudo-terminal")
    .argument("[command...]", "command and arguments (after --)")
    .passThroughOptions();
  addLongLivedOptions(cmd);
  addImageOptions(cmd);
  addNetworkOptions(cmd);
  addInterceptOptions(cmd);
  addVolumeOptions(cmd);
  addObserveOptions(cmd);
  addRemoteOption(cmd);
  return cmd.action(async (command: string[], flags: RunAllFlags) => {
    // Checked before anything else, for the default image and a remote run as well.
    // (The image code loads only when --platform is given: CLI start-up.)
    if (flags.platform !== undefined)
      (await import("../image/index.js")).checkRunPlatform(flags.platform);
    const remote = remoteOptions(flags);
    if (remote) {
      // Loaded only for remote runs: a local `run` does not pay for the SDK's remote code.
      const { runRemote } = await import("./run-remote.js");
      const secrets = parseSecretFlags(flags.secret ?? []);
      process.exitCode = await runRemote(
        command,
        flags,
        sandboxOptions(flags, secrets, true),
        remote,
      );
      return;
    }
    // The guest kernel is the node's business for a remote run.
    await noteGuestKernel(flags.kernel);
    if (isLongLived(flags)) {
      const argv = await longLivedArgv(flags, command);
      const options = sandboxOptions(flags, parseSecretFlags(flags.secret ?? []));
      process.exitCode = await runLongLived(argv, flags, options);
      return;
    }
    process.exitCode = await run(command, flags);
  });
}

/** While the minimal kernel builds in the background, or once it has switched in: one line. */
async function noteGuestKernel(kernel: string | undefined): Promise<void> {
  const line = await guestKernelNotice({ kernel });
  if (line !== undefined) process.stderr.write(`wheellock: ${line}\n`);
}

function sandboxOptions(
  flags: RunFlags,
  secrets?: ReturnType<typeof parseSecretFlags>,
  remote = false,
): SandboxOptions {
  return {
    ...(flags.image !== undefined ? { image: flags.image } : {}),
    ...(flags.cpus !== undefined ? { cpus: flags.cpus } : {}),
    ...(flags.memory !== undefined ? { memoryMb: flags.memory } : {}),
    ...(flags.diskSize !== undefined ? { diskSizeMb: flags.diskSize } : {}),
    ...(flags.timeout !== undefined ? { timeoutSeconds: flags.timeout } : {}),
    ...(flags.workdir !== undefined ? { workdir: flags.workdir } : {}),
    ...(flags.user !== undefined ? { user: flags.user } : {}),
    ...(flags.hostname !== undefined ? { hostname: flags.hostname } : {}),
    ...(flags.accel !== undefined ? { accel: flags.accel } : {}),
    ...(flags.kernel !== undefined ? { kernel: flags.kernel } : {}),
    // Unset unless given: a checkpoint's own setting is the default (withCheckpointDefaults).
    ...(flags.privileged === true ? { privileged: true } : {}),
    ...(flags.snapshot === false ? { snapshot: false } : {}),
    ...(flags.fromCheckpoint !== undefined ? { fromCheckpoint: flags.fromCheckpoint } : {}),
    ...(flags.forkMounts !== undefined ? { forkMounts: flags.forkMounts } : {}),
    ...networkSandboxOptions(flags),
    ...interceptSandboxOptions(flags, secrets),
    ...volumeSandboxOptions(flags, remote),
    ...observeSandboxOptions(flags),
    env: mergeEnv(flags.envFile, flags.env),
  };
}

/** `--approve` in the foreground asks at the terminal; it needs one, and stdin to itself. */
function approvalPrompt(flags: RunFlags): ApprovalPrompt | undefined {
  if (!flags.approve) return undefined;
  if (!process.stdin.isTTY)
    throw new ErrInvalidConfig("--approve asks at the terminal: stdin must be one (or use -d)");
  if (flags.interactive && !flags.tty)
    throw new ErrInvalidConfig("--approve with -i needs -t (-it): stdin belongs to the command");
  return new ApprovalPrompt(flags.tty === true && flags.interactive === true);
}

async function run(command: string[], flags: RunFlags & RunImageFlags): Promise<number> {
  // An image may supply the command (ENTRYPOINT/CMD); the default image does not. The image can
  // come from WHEELLOCK_IMAGE as well as --image (empty counts as unset, as in resolve.ts).
  const image = flags.image ?? (process.env[ENV_DEFAULT_IMAGE] || DEFAULT_IMAGE);
  if (command.length === 0 && image === DEFAULT_IMAGE && flags.entrypoint === undefined) {
    throw new ErrInvalidConfig("command required: wheellock run [flags] -- command [args...]");
  }
  if (flags.tty && flags.interactive && !process.stdin.isTTY) {
    throw new ErrInvalidConfig("-it requires a terminal on stdin");
  }
  const prompt = approvalPrompt(flags);
  const eventsOut = flags.events !== undefined ? await openEventsFile(flags.events) : undefined;
  await prepareRunImage(flags);
  // Ctrl-C during the start ends the process through its `exit` event, which removes the run
  // dir (a copy of a checkpoint's private disks) rather than leave it for `wheellock gc`.
  const signals = new SignalHandling(
    exitOnSignal((signal) =>
      process.stderr.write(`wheellock: ${signal}: the sandbox's start was cut\n`),
    ),
  );
  let sandbox: VmSandbox;
  try {
    // Nothing here reads usage() after close: it skips the guest's last figures (one round trip
    // on every run's way out) unless --events is iterating then.
    sandbox = await Sandbox.create(
      {
        ...sandboxOptions(flags),
        ...(prompt ? { onBlockedRequest: prompt.decide } : {}),
      },
      { noFinalUsage: true },
    );
  } catch (err) {
    signals.dispose();
    eventsOut?.end();
    throw err;
  }
  // Then, until the run ends, a signal the command's forwarder does not take (before it is
  // there, while the sandbox closes) exits the same way: its default action would kill the
  // process with the run dir left behind. Switched with no moment unhandled in between.
  signals.set(
    exitOnUnhandledSignal((signal) =>
      process.stderr.write(`wheellock: ${signal}: the run was cut\n`),
    ),
  );
  try {
    return await runIn(sandbox, command, flags, prompt, eventsOut);
  } finally {
    signals.dispose();
  }
}

async function runIn(
  sandbox: VmSandbox,
  command: string[],
  flags: RunFlags & RunImageFlags,
  prompt: ApprovalPrompt | undefined,
  eventsOut: Awaited<ReturnType<typeof openEventsFile>> | undefined,
): Promise<number> {
  const eventsWritten = eventsOut ? writeEventsFile(sandbox.events(), eventsOut) : undefined;
  try {
    const proc = sandbox.spawn(
      runArgv(sandbox.image, command, flags.entrypoint),
      flags.tty ? { tty: hostTerminalSize() } : {},
    );
    await proc.pid;
    return await (flags.tty && flags.interactive
      ? interactive(proc, prompt)
      : streamed(proc, flags.interactive === true, prompt?.output));
  } catch (err) {
    if (err instanceof ErrTimeout) {
      process.stderr.write(`wheellock: ${err.message}\n`);
      return EXIT_TIMEOUT;
    }
    if (err instanceof ErrBudgetExceeded) {
      process.stderr.write(`wheellock: ${err.message}\n`);
      return EXIT_BUDGET;
    }
    throw err;
  } finally {
    await sandbox.close();
    await eventsWritten;
    reportKeptOverlays(sandbox.keptOverlays);
  }
}
