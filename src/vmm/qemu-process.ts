import { spawn, type ChildProcess } from "node:child_process";
import { openSync, closeSync, existsSync, readFileSync } from "node:fs";
import { ErrSetup } from "../errors.js";
import { buildQemuArgs, INCOMING_STATE_FD, type VmSpec } from "./qemu-args.js";

export interface QemuExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const SETPRIV_CANDIDATES = ["/usr/bin/setpriv", "/bin/setpriv"];

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
 * One QEMU process. It is started under `setpriv --pdeathsig KILL` so the kernel kills it if
 * the host process dies for any reason (even SIGKILL): no orphaned VMs.
 */
export class QemuProcess {
  readonly pid: number;
  readonly exited: Promise<QemuExit>;
  private readonly child: ChildProcess;
  private exitInfo: QemuExit | undefined;

  private constructor(child: ChildProcess) {
    this.child = child;
    if (child.pid === undefined) throw new ErrSetup("failed to start QEMU");
    this.pid = child.pid;
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
    });
  }

  static start(spec: VmSpec, qemuLogPath: string): QemuProcess {
    const qemu = findQemuBinary();
    const setpriv = SETPRIV_CANDIDATES.find((p) => existsSync(p));
    const argv = buildQemuArgs(spec);
    const [cmd, args] = setpriv
      ? [setpriv, ["--pdeathsig", "KILL", "--", qemu, ...argv]]
      : [qemu, argv];
    const logFd = openSync(qemuLogPath, "a");
    let stateFd: number | undefined;
    try {
      const stdio: (number | "ignore")[] = ["ignore", logFd, logFd];
      if (spec.incomingStatePath !== undefined) {
        stateFd = openSync(spec.incomingStatePath, "r");
        stdio[INCOMING_STATE_FD] = stateFd;
      }
      // Own session: Ctrl-C at the owner's terminal is for the owner (which forwards it to the
      // guest command or stops cleanly), not for QEMU. The parent-death signal still applies.
      const child = spawn(cmd, args, { stdio, detached: true });
      return new QemuProcess(child);
    } finally {
      closeSync(logFd);
      if (stateFd !== undefined) closeSync(stateFd);
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

/** Last lines of a log file, for error messages ("QEMU exited: <tail>"). */
export function logTail(path: string, maxLines = 15): string {
  try {
    const lines = readFileSync(path, "utf8")
      .split("\n")
      .filter((l) => l.trim().length > 0);
    return lines.slice(-maxLines).join("\n");
  } catch {
    return "";
  }
}
