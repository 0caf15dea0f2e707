// `wheellock ARGS | head -c1`, as a user types it: the reader of the CLI's output reads one
// byte and goes away.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { CLI } from "./lifecycle.js";

/** The CLI's exit status (bash's PIPESTATUS[0]) and everything it wrote to stderr. */
export async function wheellockIntoHead(
  args: string[],
  timeoutMs = 240_000,
): Promise<{ code: number | null; stderr: string }> {
  const script = '"$@" | head -c1 >/dev/null; exit "${PIPESTATUS[0]}"';
  const child = spawn("bash", ["-c", script, "bash", process.execPath, ...CLI, ...args], {
    stdio: ["ignore", "ignore", "pipe"],
    detached: true, // its own process group: a hung CLI is killed with the shell
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => process.kill(-(child.pid as number), "SIGKILL"), timeoutMs);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(timer);
  return { code, stderr };
}
