/**
 * `run -d`: start this CLI again as a supervisor in its own session (no terminal, so closing
 * the terminal or the CLI's exit leaves it running), wait until it reports the sandbox
 * running, and hand back the id. Its early stderr goes to a file so a boot failure can be
 * reported here in one line.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { WheellockError } from "../errors.js";
import { sandboxesDir } from "../state/index.js";
import { makePrivateDir } from "../paths.js";

/** The hidden flag that turns `run` into the supervisor of a detached sandbox. */
export const SUPERVISOR_FLAG = "--supervisor";
/** Names the supervisor's stderr file, which it moves into the sandbox dir once it runs. */
export const SUPERVISOR_LOG_ENV = "WHEELLOCK_SUPERVISOR_LOG";
/** What the supervisor prints on stdout once the sandbox runs. */
export const READY_PREFIX = "ready ";

/**
 * `args` are the original `run` arguments (after `run`); `extra.flags` are added before the
 * command's `--`, and `extra.stdin` is written to the supervisor's stdin (then closed), which
 * is how data that must not appear in its argv (secrets) reaches it.
 */
export async function startDetached(
  args: string[],
  extra: { flags?: string[]; stdin?: string; script?: string; execArgv?: string[] } = {},
): Promise<string> {
  // The CLI re-runs itself; the SDK names the CLI's entry point (its caller is not the CLI).
  const script = extra.script ?? process.argv[1];
  if (script === undefined) throw new Error("cannot find the wheellock CLI script to re-run");
  const dash = args.indexOf("--");
  const added = [SUPERVISOR_FLAG, ...(extra.flags ?? [])];
  const childArgs =
    dash < 0 ? [...args, ...added] : [...args.slice(0, dash), ...added, ...args.slice(dash)];
  makePrivateDir(sandboxesDir());
  const errPath = join(
    sandboxesDir(),
    `.start-${process.pid}-${randomBytes(4).toString("hex")}.log`,
  );
  const errFd = openSync(errPath, "w", 0o600);
  try {
    const execArgv = extra.execArgv ?? process.execArgv;
    const child = spawn(process.execPath, [...execArgv, script, "run", ...childArgs], {
      detached: true,
      stdio: [extra.stdin !== undefined ? "pipe" : "ignore", "pipe", errFd],
      env: { ...process.env, [SUPERVISOR_LOG_ENV]: errPath },
    });
    if (extra.stdin !== undefined) {
      child.stdin?.on("error", () => undefined);
      child.stdin?.end(extra.stdin);
    }
    const stdout = child.stdout;
    if (!stdout) throw new Error("supervisor started without a stdout pipe");
    const id = await new Promise<string>((resolve, reject) => {
      let out = "";
      stdout.setEncoding("utf8");
      stdout.on("data", (text: string) => {
        out += text;
        const line = out.split("\n").find((l) => l.startsWith(READY_PREFIX));
        if (line) resolve(line.slice(READY_PREFIX.length).trim());
      });
      child.once("error", reject);
      child.once("exit", (code, signal) => {
        let early = "";
        try {
          early = readFileSync(errPath, "utf8");
        } catch {
          // already moved into the sandbox dir by a supervisor that got as far as running
        }
        const lines = early.trim().split("\n").filter(Boolean);
        const last = lines.at(-1)?.replace(/^wheellock: /, "");
        reject(
          new WheellockError(
            "ErrVMNotRunning",
            last ??
              `sandbox supervisor exited before the sandbox ran (code ${code ?? "-"}, signal ${signal ?? "-"})`,
          ),
        );
      });
    });
    // The supervisor lives on by itself: an SDK caller's process must neither wait for it
    // nor hear about its exit (which is `kill`'s business, not a failed start). The "error"
    // listener stays: a late error on a ChildProcess without one would be thrown.
    child.removeAllListeners("exit");
    stdout.destroy();
    child.stdin?.destroy();
    child.unref();
    return id;
  } finally {
    closeSync(errFd);
    rmSync(errPath, { force: true });
  }
}
