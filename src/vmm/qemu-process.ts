import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ErrSetup } from "../errors.js";
import {
  CONSOLE_LOG_SEGMENT_BYTES,
  openRingLog,
  readRingLogTail,
  sanitizeTerminalText,
} from "../util/index.js";
import { acquireJail, findTool, jailedCommand, jailNeeded, type QemuJail } from "./jail.js";
import { drainConsole } from "./console-stream.js";
import { openLaunchDescriptors, type OpenedDescriptors } from "./launch-descriptors.js";
import { qemuEnvironment } from "./qemu-env.js";
import { planQemuLaunch, type VmSpec } from "./qemu-args.js";

export interface QemuExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** QEMU's own messages (stderr), kept like the console: a guest can make QEMU complain. */
const QEMU_LOG_SEGMENT_BYTES = 256 * 1024;
/**
 * How long `exited` waits, once QEMU is gone, for its logs to be written out. Bounded, so a
 * log that cannot be written (a stuck disk) never wedges stopping a sandbox; the copy goes
 * on in the background.
 */
const LOG_FLUSH_MS = 5_000;

export function findQemuBinary(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.WHEELLOCK_QEMU;
  if (override) {
    if (!existsSync(override)) throw new ErrSetup(`WHEELLOCK_QEMU=${override} does not exist`);
    return override;
  }
  for (const dir of (env.PATH ?? "/usr/bin:/bin").split(":")) {
    const candidate = `${dir}/qemu-system-x86_64`;
    if (dir && existsSync(candidate)) return candidate;
  }
  throw new ErrSetup(
    "qemu-system-x86_64 not found: run `wheellock setup` (or install qemu-system-x86)",
  );
}

/**
 * The command that starts QEMU: under `setpriv --pdeathsig KILL`, so the kernel kills it if
 * the host process dies for any reason (even SIGKILL): no orphaned VMs. Jailed, setpriv
 * also switches to the jail's user (jail.ts). Without setpriv only an unjailed QEMU may start
 * (with no parent-death signal, as before).
 */
function launchCommand(qemu: string, args: string[], jail: QemuJail | undefined): string[] {
  if (jail) return jailedCommand(jail, [qemu, ...args]);
  const setpriv = findTool("setpriv");
  return setpriv ? [setpriv, "--pdeathsig", "KILL", "--", qemu, ...args] : [qemu, ...args];
}

/**
 * One QEMU process: confined by its seccomp filter, jailed when wheellock runs as root
 * (jail.ts), given every file and socket as an inherited descriptor. Its serial console and
 * its own messages go to bounded ring logs; `exited` resolves once both are written out.
 */
export class QemuProcess {
  readonly pid: number;
  readonly exited: Promise<QemuExit>;
  /** The user QEMU runs as: its own when jailed, else this process's. */
  readonly uid: number;
  private readonly child: ChildProcess;
  private exitInfo: QemuExit | undefined;

  private constructor(
    child: ChildProcess,
    pid: number,
    uid: number,
    logsWritten: Promise<unknown>,
  ) {
    this.child = child;
    this.pid = pid;
    this.uid = uid;
    const processExit = new Promise<QemuExit>((resolve) => {
      child.once("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
    });
    this.exited = processExit.then(async (exit) => {
      let timer: NodeJS.Timeout | undefined;
      const flushDeadline = new Promise((resolve) => (timer = setTimeout(resolve, LOG_FLUSH_MS)));
      await Promise.race([logsWritten, flushDeadline]);
      clearTimeout(timer);
      return exit;
    });
  }

  static async start(spec: VmSpec, qemuLogPath: string): Promise<QemuProcess> {
    const qemu = findQemuBinary();
    const plan = planQemuLaunch(spec);
    const jail = jailNeeded()
      ? acquireJail({
          accel: spec.accel,
          mapsSnapshotRam: spec.memoryFile !== undefined && !spec.memoryFile.shared,
        })
      : undefined;
    let opened: OpenedDescriptors | undefined;
    try {
      const [cmd, ...args] = launchCommand(qemu, plan.args, jail);
      opened = await openLaunchDescriptors(plan.descriptors, jail);
      let child: ChildProcess;
      try {
        // Own session: Ctrl-C at the owner's terminal is for the owner (which forwards it to
        // the guest command or stops cleanly), not for QEMU. The parent-death signal still
        // applies.
        child = spawn(cmd ?? qemu, args, {
          stdio: opened.stdio,
          detached: true,
          env: qemuEnvironment(process.env),
        });
      } finally {
        opened.close();
      }
      // A failed spawn (no pid) also emits "error"; the throw below reports it.
      child.on("error", () => undefined);
      if (child.pid === undefined) throw new ErrSetup(`failed to start QEMU (${cmd})`);
      const logs = [
        keepLog(child.stdio[2], qemuLogPath, QEMU_LOG_SEGMENT_BYTES),
        drainConsole(opened.console, openRingLog(spec.consoleLogPath, CONSOLE_LOG_SEGMENT_BYTES)),
      ];
      const vm = new QemuProcess(child, child.pid, jail?.uid ?? currentUid(), Promise.all(logs));
      void vm.exited.then(() => jail?.release());
      return vm;
    } catch (err) {
      opened?.console.destroy();
      jail?.release();
      throw err;
    }
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  kill(): void {
    if (this.running) this.child.kill("SIGKILL");
  }

  /** Waits up to `timeoutMs` for QEMU to exit by itself, then kills it. */
  async stop(timeoutMs: number): Promise<QemuExit> {
    if (!this.running) return this.exited;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const result = await Promise.race([this.exited, timedOut]);
    clearTimeout(timer);
    if (result === "timeout") this.kill();
    return this.exited;
  }
}

function currentUid(): number {
  return process.getuid?.() ?? -1;
}

/** Copies one of QEMU's output streams into a ring log; resolves when all of it is written. */
async function keepLog(
  stream: Readable | null | undefined,
  path: string,
  segmentBytes: number,
): Promise<void> {
  if (!stream) return;
  await pipeline(stream, openRingLog(path, segmentBytes)).catch(() => undefined);
}

/**
 * Last lines of a (ring) log, for error messages ("QEMU exited: <tail>"). Cleaned for a
 * terminal: the console is guest output, and errors are printed.
 */
export function logTail(path: string, maxLines = 15): string {
  const lines = sanitizeTerminalText(readRingLogTail(path, 64 * 1024))
    .split("\n")
    .filter((l) => l.trim().length > 0);
  // When the agent stopped the boot (guest/boot.c, fatal), its last lines say why; the kernel
  // panic that follows (PID 1 exited) fills the tail with registers and says nothing more.
  const agent = lines.filter((l) => l.startsWith(AGENT_LOG_PREFIX));
  if (agent.some((l) => l.startsWith(`${AGENT_LOG_PREFIX}FATAL:`)))
    return agent.slice(-AGENT_LINES).join("\n");
  return lines.slice(-maxLines).join("\n");
}

/** How the guest agent's console lines start (guest/util.c, logmsg). */
const AGENT_LOG_PREFIX = "wheellock-agent: ";
const AGENT_LINES = 5;
