/**
 * Starting a detached supervisor (`run -d`, `Sandbox.startDetached`): its own process in its
 * own session (no terminal, so closing the terminal or the caller's exit leaves it running),
 * given its request on stdin; we wait until it reports the sandbox running and hand back the
 * id. Its early stderr goes to a file so a boot failure is reported here in one line.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { ErrVMNotRunning } from "../errors.js";
import { makePrivateDir, ownEntryPoint } from "../paths.js";
import { sandboxesDir } from "../state/index.js";
import {
  READY_PREFIX,
  readStartFailed,
  SUPERVISOR_LOG_ENV,
  writeSupervisorStart,
} from "./start-request.js";
import type { SuperviseRequest } from "./supervise.js";

/** The last line the supervisor wrote before it died, for a one-line error. */
function earlyError(errPath: string, code: number | null, signal: string | null): string {
  let early = "";
  try {
    early = readFileSync(errPath, "utf8");
  } catch {
    // already moved into the sandbox dir by a supervisor that got as far as running
  }
  const last = early
    .trim()
    .split("\n")
    .filter(Boolean)
    .at(-1)
    ?.replace(/^wheellock: /, "");
  return (
    last ??
    `sandbox supervisor exited before the sandbox ran (code ${code ?? "-"}, signal ${signal ?? "-"})`
  );
}

/** Starts the supervisor; resolves with the sandbox id once it runs. */
export async function startSupervisor(req: SuperviseRequest, label?: string): Promise<string> {
  // Before anything starts: a plan that cannot travel (callbacks) is refused here.
  const input = writeSupervisorStart(req, label);
  makePrivateDir(sandboxesDir());
  const errPath = join(
    sandboxesDir(),
    `.start-${process.pid}-${randomBytes(4).toString("hex")}.log`,
  );
  const errFd = openSync(errPath, "w", 0o600);
  try {
    const child = spawn(process.execPath, ownEntryPoint("supervisor/main"), {
      detached: true,
      stdio: ["pipe", "pipe", errFd],
      env: { ...process.env, [SUPERVISOR_LOG_ENV]: errPath },
    });
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(input);
    const stdout = child.stdout;
    if (!stdout) throw new Error("supervisor started without a stdout pipe");
    const id = await new Promise<string>((resolve, reject) => {
      let out = "";
      stdout.setEncoding("utf8");
      stdout.on("data", (text: string) => {
        out += text;
        // Whole lines only: a line split across reads must not yield half an id.
        const lines = out.split("\n").slice(0, -1);
        const line = lines.find((l) => l.startsWith(READY_PREFIX));
        if (line) resolve(line.slice(READY_PREFIX.length).trim());
        // The start failed: the same typed error an in-process start would have thrown.
        const failed = lines.map(readStartFailed).find((err) => err !== undefined);
        if (failed) reject(failed);
      });
      child.once("error", reject);
      // After its stdout is read to the end (`close`), so a failure line is never missed.
      child.once("close", (code, signal) =>
        reject(new ErrVMNotRunning(earlyError(errPath, code, signal))),
      );
    });
    // The supervisor lives on by itself: the caller's process must neither wait for it nor
    // hear about its exit (which is `kill`'s business, not a failed start). The "error"
    // listener stays: a late error on a ChildProcess without one would be thrown.
    child.removeAllListeners("close");
    stdout.destroy();
    child.stdin?.destroy();
    child.unref();
    return id;
  } finally {
    closeSync(errFd);
    rmSync(errPath, { force: true });
  }
}
