// `wheellock serve` as a child process for VM tests: its own data dir, the URL and operator
// token it made, and a kill that leaves nothing running (its detached supervisors included,
// when asked).
import { spawn, type ChildProcess } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "node:test";
import { CLI } from "./lifecycle.js";

export interface ServeProcess {
  url: string;
  node: string;
  token: string;
  dataDir: string;
  /** With `--single`: the id of the one sandbox it serves. */
  sandbox?: string;
  child: ChildProcess;
  /** Everything it wrote on stderr so far. */
  stderr(): string;
  /** SIGTERM (or the given signal), resolved once it exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** `input`, when given, is written to its stdin (a plan for `--single`), then EOF. */
export async function startServe(
  dataDir: string,
  args: string[] = [],
  input?: string,
): Promise<ServeProcess> {
  const child = spawn(process.execPath, [...CLI, "serve", "--listen", "127.0.0.1:0", ...args], {
    env: { ...process.env, WHEELLOCK_DATA_DIR: dataDir },
    stdio: ["pipe", "pipe", "pipe"],
  });
  if (input !== undefined) child.stdin?.end(input);
  let err = "";
  child.stderr?.on("data", (c: Buffer) => (err += c.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
      if (out.includes("\n")) resolve(out.split("\n")[0] as string);
    });
    child.once("exit", (code) => reject(new Error(`serve exited (${code}): ${err}`)));
  });
  const ready = JSON.parse(line) as {
    url: string;
    node: string;
    tokenFile: string;
    sandbox?: string;
  };
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    url: ready.url,
    node: ready.node,
    token: readFileSync(ready.tokenFile, "utf8").trim(),
    ...(ready.sandbox !== undefined ? { sandbox: ready.sandbox } : {}),
    dataDir,
    child,
    stderr: () => err,
    stop: async (signal: NodeJS.Signals = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** The resident set of a process, in bytes (Linux). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? "0");
  return kb * 1024;
}

/** The supervisor pids recorded in a node's data dir. */
export function supervisorPids(dataDir: string, ids: string[]): number[] {
  return ids.flatMap((id) => {
    try {
      const rec = JSON.parse(
        readFileSync(join(dataDir, "sandboxes", id, "state.json"), "utf8"),
      ) as { supervisorPid?: number };
      return rec.supervisorPid ? [rec.supervisorPid] : [];
    } catch {
      return [];
    }
  });
}

/**
 * When a test of the file fails, copies what the nodes' data dirs say about their sandboxes
 * (console `vm.log`, `supervisor.log`, `state.json` with the crash reason, the run dir's
 * `qemu.log` while it exists) and each node's stderr out of the data dirs, which go with the
 * test process: into `$WHEELLOCK_TEST_KEEP_DIR`, or a `wheellock-kept-*` dir in tmpdir, named
 * on stderr. Call `save()` in an `after` hook before anything is stopped.
 */
export function keepLogsOnFailure(
  name: string,
  nodes: () => ReadonlyArray<{ dataDir: string; stderr?: () => string } | undefined>,
): { save(): void } {
  let failed = false;
  afterEach((t) => {
    if ("passed" in t && t.passed === false) failed = true;
  });
  return {
    save: () => {
      if (!failed) return;
      const keep = mkdtempSync(
        join(process.env.WHEELLOCK_TEST_KEEP_DIR ?? tmpdir(), `wheellock-kept-${name}-`),
      );
      nodes().forEach((node, i) => {
        if (!node) return;
        const to = join(keep, `node-${i}`);
        for (const sub of ["sandboxes", "run"]) {
          const from = join(node.dataDir, sub);
          if (!existsSync(from)) continue;
          cpSync(from, join(to, sub), {
            recursive: true,
            // Sockets and disk images say nothing and can be large.
            filter: (src) => {
              try {
                return statSync(src).isDirectory() || /\.(log|json)$/.test(src);
              } catch {
                return false; // gone meanwhile (a run dir of a stopping sandbox)
              }
            },
          });
        }
        if (node.stderr) {
          mkdirSync(to, { recursive: true });
          writeFileSync(join(to, "serve.stderr"), node.stderr());
        }
      });
      process.stderr.write(`kept the failed run's logs in ${keep}\n`);
    },
  };
}
