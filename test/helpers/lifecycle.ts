// Driving the `wheellock` CLI for long-lived sandbox tests, and cleaning up after them:
// detached supervisors outlive the test process unless the test stops them.
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export const CLI = ["--import", "tsx", join(import.meta.dirname, "../../src/cli/main.ts")];

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion (async, so several can run at once). */
export function wheellock(args: string[], input = "", timeoutMs = 240_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`wheellock ${args.join(" ")} timed out; stderr: ${stderr}`));
    }, timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

export function wheellockSync(args: string[], env: NodeJS.ProcessEnv = process.env): CliResult {
  const r = spawnSync(process.execPath, [...CLI, ...args], {
    encoding: "utf8",
    env,
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `run -d`: resolves with the new sandbox id. */
export async function startDetached(args: string[] = []): Promise<string> {
  const r = await wheellock(["run", "-d", "--memory", "256", ...args]);
  if (r.code !== 0) throw new Error(`run -d failed (${r.code}): ${r.stderr}`);
  const id = r.stdout.trim();
  if (!/^vm-[0-9a-f]{8}$/.test(id)) throw new Error(`run -d printed ${JSON.stringify(r.stdout)}`);
  return id;
}

export interface RecordJson {
  id: string;
  status: string;
  supervisorPid: number;
  qemuPid?: number;
  ports: { address: string; localPort: number; remotePort: number }[];
  lastError?: string;
}

export function inspect(id: string): RecordJson {
  const r = wheellockSync(["inspect", id]);
  if (r.code !== 0) throw new Error(`inspect ${id}: ${r.stderr}`);
  return JSON.parse(r.stdout) as RecordJson;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
  } catch {
    return false;
  }
}

/** Polls `cond` every `pollMs` until it holds; fails after `timeoutMs`, naming `what`. */
export async function waitUntil(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
  pollMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** SIGKILLs every supervisor recorded under the data dir (QEMU follows by parent-death signal). */
export function killAllSupervisors(dataDir: string): void {
  let ids: string[] = [];
  try {
    ids = readdirSync(join(dataDir, "sandboxes")).filter((f) => f.startsWith("vm-"));
  } catch {
    return;
  }
  for (const id of ids) {
    try {
      const rec = JSON.parse(
        readFileSync(join(dataDir, "sandboxes", id, "state.json"), "utf8"),
      ) as RecordJson;
      for (const pid of [rec.supervisorPid, rec.qemuPid]) {
        // Only our own processes: a recycled pid must never be shot.
        const cmdline = pid ? readFileSync(`/proc/${pid}/cmdline`, "utf8") : "";
        if (pid && /--supervisor|qemu-system/.test(cmdline)) process.kill(pid, "SIGKILL");
      }
    } catch {
      // gone already
    }
  }
}
