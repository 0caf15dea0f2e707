/**
 * The supervisor: the process that owns one long-lived sandbox. It boots the VM, keeps the
 * state record current, serves the control socket until `stop`, SIGTERM or SIGINT, and records
 * how the sandbox ended. QEMU is its child under a parent-death signal, so if the supervisor
 * is killed outright the VM dies with it and readers see the record as crashed.
 */
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve as resolvePath } from "node:path";
import { openEventsFile, writeEventsFile } from "../sandbox/events-file.js";
import { newSandboxId, resolveSandboxOptions, type SandboxOptions } from "../config/index.js";
import { runDir } from "../paths.js";
import { Sandbox, type ExecProcess } from "../sandbox/index.js";
import {
  controlSocketPath,
  logPath,
  processStartTicks,
  sandboxDir,
  writeRecord,
  type PortBinding,
  type SandboxRecord,
} from "../state/index.js";
import { openRingLog } from "../util/ring-log.js";
import { ControlServer } from "./server.js";
import { PortForwarder } from "./port-forward.js";

export interface SuperviseRequest {
  options: SandboxOptions;
  /** Run once the sandbox is up; its output is appended to the sandbox log. */
  command: string[];
  ports: PortBinding[];
  /** On stop, running commands get SIGTERM and this long to exit before the VM is powered off. */
  gracefulShutdownMs: number;
  /** The sandbox is running and its record says so. */
  onReady: (record: SandboxRecord) => void;
  /** Append the sandbox's events here as JSON lines (`--events FILE`). */
  eventsPath?: string;
  /** Also copy the command's output here (foreground `run --rm=false`). */
  echo?: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };
}

/** Children of this process (QEMU is the only one while a sandbox boots). */
function childPids(): number[] {
  const pids: number[] = [];
  for (const tid of readdirSync("/proc/self/task")) {
    try {
      const text = readFileSync(`/proc/self/task/${tid}/children`, "utf8").trim();
      if (text) pids.push(...text.split(/\s+/).map(Number));
    } catch {
      // thread ended meanwhile
    }
  }
  return pids;
}

function initialRecord(id: string, options: SandboxOptions, ports: PortBinding[]): SandboxRecord {
  const now = new Date().toISOString();
  return {
    id,
    image: options.image ?? process.env.WHEELLOCK_IMAGE ?? "default",
    status: "starting",
    supervisorPid: process.pid,
    supervisorStartTicks: processStartTicks(process.pid) ?? 0,
    createdAt: now,
    updatedAt: now,
    ports,
    config: {
      cpus: options.cpus ?? 1,
      memoryMb: options.memoryMb ?? 512,
      diskSizeMb: options.diskSizeMb ?? 5120,
      timeoutSeconds: options.timeoutSeconds ?? 0,
      hostname: options.hostname ?? id,
      ...(options.workdir !== undefined ? { workdir: options.workdir } : {}),
      ...(options.user !== undefined ? { user: options.user } : {}),
      privileged: options.privileged === true,
      accel: options.accel ?? process.env.WHEELLOCK_ACCEL ?? "auto",
      envNames: Object.keys(options.env ?? {}).sort(),
    },
  };
}

/** Runs until the sandbox stops; resolves with the process exit status to use. */
export async function supervise(req: SuperviseRequest): Promise<number> {
  const id = newSandboxId();
  // Bad options are the caller's mistake, not a sandbox that crashed: no record for them.
  resolveSandboxOptions(req.options, undefined, undefined, id);
  const eventsOut =
    req.eventsPath !== undefined ? await openEventsFile(resolvePath(req.eventsPath)) : undefined;
  mkdirSync(sandboxDir(id), { recursive: true, mode: 0o700 });
  let record = initialRecord(id, req.options, req.ports);
  record.config.gracefulShutdownMs = req.gracefulShutdownMs;
  const update = (patch: Partial<SandboxRecord>): void => {
    record = { ...record, ...patch };
    writeRecord(record);
  };
  update({});
  let sandbox: Sandbox;
  try {
    sandbox = await Sandbox.create(
      // The deadline is ours (below): reaching it is a clean, graceful stop, not a crash.
      { ...req.options, timeoutSeconds: 0 },
      { id, consoleLogPath: logPath(id) },
    );
  } catch (err) {
    eventsOut?.end();
    update({ status: "crashed", lastError: (err as Error).message });
    throw err;
  }
  record = {
    ...record,
    image: sandbox.config.image,
    config: {
      ...record.config,
      hostname: sandbox.config.hostname,
      network: {
        intercept: sandbox.config.networkIntercept,
        allowedHosts: [...sandbox.config.allowedHosts],
        secretNames: sandbox.config.secrets.map((s) => s.name),
      },
    },
  };

  let stopping: Promise<number> | undefined;
  let deadline: NodeJS.Timeout | undefined;
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));
  const forwarder = new PortForwarder(sandbox);
  /** `crash`: why the sandbox died under us; `note`: why a clean stop happened. */
  const stop = (crash?: string, note?: string): Promise<number> => {
    stopping ??= (async () => {
      clearTimeout(deadline);
      update({ status: "stopping" });
      if (!crash) await terminateGracefully(server.running, req.gracefulShutdownMs);
      forwarder.close();
      server.close();
      await sandbox.close();
      await eventsWritten;
      const why = crash ?? note;
      update({ status: crash ? "crashed" : "stopped", ...(why ? { lastError: why } : {}) });
      return crash ? 1 : 0;
    })();
    void stopping.then(finish);
    return stopping;
  };
  const eventsWritten =
    eventsOut !== undefined
      ? writeEventsFile(sandbox.events(), eventsOut).catch((err: Error) =>
          process.stderr.write(`wheellock: --events: ${err.message}\n`),
        )
      : undefined;
  const server = await ControlServer.listen(sandbox, controlSocketPath(join(runDir(), id)), {
    onStop: () => void stop(),
    forwardPort: (socket, port) => forwarder.relay(socket, port),
    ...(sandbox.intercepting
      ? {
          allowList: async (action: "add" | "delete", hosts: string[]) => ({
            changed:
              action === "add" ? sandbox.allowHosts(...hosts) : sandbox.disallowHosts(...hosts),
            allowed: sandbox.allowedHosts,
            emptyDeniesAll: sandbox.allowlistEmptyDeniesAll,
          }),
        }
      : {}),
  });
  void (async () => {
    for await (const event of sandbox.events()) {
      if (event.type === "lifecycle" && event.lifecycle.state === "stopped" && !stopping) {
        void stop(event.lifecycle.reason ?? "VM stopped unexpectedly");
      }
    }
  })();
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const)
    process.on(signal, () => void stop());
  try {
    const bound = await forwarder.listenAll(req.ports);
    update({ status: "running", qemuPid: childPids()[0], ports: bound });
  } catch (err) {
    await stop((err as Error).message);
    throw err;
  }
  // A long-lived sandbox has no deadline unless one was asked for (--timeout).
  const timeoutSeconds = req.options.timeoutSeconds ?? 0;
  if (timeoutSeconds > 0) {
    deadline = setTimeout(
      () => void stop(undefined, `timed out after ${timeoutSeconds} s`),
      timeoutSeconds * 1000,
    );
  }
  req.onReady(record);
  if (req.command.length > 0) void runLogged(sandbox, req.command, logPath(id), req.echo);
  return done;
}

async function terminateGracefully(
  procs: ReadonlySet<ExecProcess>,
  graceMs: number,
): Promise<void> {
  if (graceMs <= 0 || procs.size === 0) return;
  const all = [...procs];
  for (const proc of all) proc.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled(all.map((p) => p.wait())),
    new Promise((resolve) => (timer = setTimeout(resolve, graceMs))),
  ]);
  clearTimeout(timer);
}

/**
 * The command a detached `run` was given: output appended to the sandbox log, a ring shared
 * with the serial console (util/ring-log.ts), so neither can fill the host disk.
 */
async function runLogged(
  sandbox: Sandbox,
  command: string[],
  path: string,
  echo: SuperviseRequest["echo"],
): Promise<void> {
  const log = openRingLog(path);
  try {
    const proc = sandbox.spawn(command);
    proc.stdin.end();
    for await (const chunk of proc) {
      log.write(chunk.data);
      echo?.[chunk.stream].write(chunk.data);
    }
    const exit = await proc.wait();
    log.write(`wheellock: command exited with status ${exit.exitCode}\n`);
  } catch (err) {
    log.write(`wheellock: command failed: ${(err as Error).message}\n`);
  } finally {
    log.end();
  }
}
