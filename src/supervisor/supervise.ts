/**
 * The supervisor: the process that owns one long-lived sandbox. It boots the VM, keeps the
 * state record current, serves the control socket until `stop`, SIGTERM or SIGINT, and records
 * how the sandbox ended. QEMU is its child under a parent-death signal, so if the supervisor
 * is killed outright the VM dies with it and readers see the record as crashed.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { SandboxPlan } from "../config/index.js";
import { makePrivateDir, runDir } from "../paths.js";
import {
  launchVmSandbox,
  openEventsFile,
  writeEventsFile,
  type ExecProcess,
  type VmSandbox,
} from "../sandbox/index.js";
import {
  controlSocketPath,
  logPath,
  newRecord,
  sandboxDir,
  writeRecord,
  type PortBinding,
  type SandboxRecord,
} from "../state/index.js";
import { exitOnSignal, ResourceStack, SignalHandling } from "../util/index.js";
import { ControlServer } from "./control-server.js";
import { runLogged, type EchoStreams } from "./logged-command.js";
import { PortPublisher } from "./port-forward.js";

/** What a supervisor is asked to run: the plan and what is around the sandbox. */
export interface SuperviseRequest {
  plan: SandboxPlan;
  /** Run once the sandbox is up; its output is appended to the sandbox log. */
  command: string[];
  ports: PortBinding[];
  /** On stop, running commands get SIGTERM and this long to exit before the VM is powered off. */
  gracefulShutdownMs: number;
  /** Append the sandbox's events here as JSON lines (`--events FILE`), an absolute path. */
  eventsPath?: string;
}

export interface SuperviseHooks {
  /** The sandbox is running and its record says so. */
  onReady: (record: SandboxRecord) => void;
  /** Also copy the command's output here (foreground `run --rm=false`). */
  echo?: EchoStreams;
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

/** Runs until the sandbox stops; resolves with the process exit status to use. */
export async function supervise(req: SuperviseRequest, hooks: SuperviseHooks): Promise<number> {
  const { plan } = req;
  const eventsOut = req.eventsPath !== undefined ? await openEventsFile(req.eventsPath) : undefined;
  makePrivateDir(sandboxDir(plan.id));
  let record = newRecord(plan, {
    status: "starting",
    ports: req.ports,
    gracefulShutdownMs: req.gracefulShutdownMs,
  });
  const update = (patch: Partial<SandboxRecord>): void => {
    record = { ...record, ...patch };
    writeRecord(record);
  };
  update({});
  // Everything the supervisor holds, released in reverse order by `stop` or a failed start.
  const resources = new ResourceStack((err) => process.stderr.write(`wheellock: ${err.message}\n`));
  if (eventsOut) resources.defer("events file", () => void eventsOut.end());
  // Cut by a signal while starting (`kill` of a starting sandbox, Ctrl-C on `run --rm=false`):
  // the process exits, so that its run dir goes, with the record saying why. Once the sandbox
  // is up a signal stops it (below); the handling is switched, never removed in between, and
  // before the control server is listening (a signal there had its default action: the
  // process died with its record "starting" and its run dir left behind). Installed for the
  // rest of the supervisor's life, as the stop was: a signal while it stops stops it again.
  const signals = new SignalHandling(
    exitOnSignal((signal) =>
      update({ status: "stopped", lastError: `start interrupted (${signal})` }),
    ),
  );
  let sandbox: VmSandbox;
  try {
    // The deadline is ours (below): reaching it is a clean, graceful stop, not a crash.
    sandbox = await launchVmSandbox(
      { ...plan, timeoutSeconds: 0 },
      { consoleLogPath: logPath(plan.id), cleanPoweroff: true },
    );
  } catch (err) {
    await resources.release();
    update({ status: "crashed", lastError: (err as Error).message });
    signals.dispose();
    throw err;
  }
  const eventsWritten =
    eventsOut !== undefined
      ? writeEventsFile(sandbox.events(), eventsOut).catch((err: Error) =>
          process.stderr.write(`wheellock: --events: ${err.message}\n`),
        )
      : undefined;
  // After the sandbox: its last events (the `stopped` one) are written before the file ends.
  resources.defer("events writer", async () => void (await eventsWritten));
  resources.defer("sandbox", () => sandbox.close());
  sandbox.onAllowlistChange((allowedHosts, approvedHosts) => {
    const network = record.config.network;
    if (network)
      update({
        config: { ...record.config, network: { ...network, allowedHosts, approvedHosts } },
      });
  });

  let stopping: Promise<number> | undefined;
  /** The control server, once listening (a signal may stop the sandbox before it is). */
  const server: { control?: ControlServer } = {};
  let deadline: NodeJS.Timeout | undefined;
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));
  /** `crash`: why the sandbox died under us; `note`: why a clean stop happened. */
  const stop = (crash?: string, note?: string): Promise<number> => {
    stopping ??= (async () => {
      clearTimeout(deadline);
      update({ status: "stopping" });
      if (!crash && server.control)
        await terminateGracefully(server.control.running, req.gracefulShutdownMs);
      await resources.release();
      const why = crash ?? note;
      const usage = await sandbox.usage().catch(() => undefined);
      update({
        status: crash ? "crashed" : "stopped",
        ...(why ? { lastError: why } : {}),
        ...(usage ? { usage } : {}),
      });
      // After the reply to a `stop` operation has gone out.
      setImmediate(() => server.control?.disconnectAll());
      return crash ? 1 : 0;
    })();
    void stopping.then(finish);
    return stopping;
  };
  signals.set(() => void stop());
  const control = await ControlServer.listen(
    sandbox,
    controlSocketPath(join(runDir(), plan.id)),
    async () => void (await stop()),
  );
  server.control = control;
  resources.defer("control socket", () => control.stopAccepting());
  // Stopped by a signal while the control server was starting: it is let go at once (above).
  if (stopping) return done;
  const publisher = new PortPublisher(sandbox);
  resources.defer("published ports", () => publisher.close());
  void (async () => {
    for await (const event of sandbox.events()) {
      if (event.type === "lifecycle" && event.lifecycle.state === "stopped" && !stopping) {
        const reason = event.lifecycle.reason ?? "VM stopped unexpectedly";
        // A spent budget is a stop the user asked for, not a crash.
        if (event.lifecycle.code === "ErrBudgetExceeded") void stop(undefined, reason);
        else void stop(reason);
      }
    }
  })();
  try {
    const bound = await publisher.listenAll(req.ports);
    update({ status: "running", qemuPid: childPids()[0], ports: bound });
  } catch (err) {
    await stop((err as Error).message);
    throw err;
  }
  // A long-lived sandbox has no deadline unless one was asked for (--timeout).
  if (plan.timeoutSeconds > 0) {
    deadline = setTimeout(
      () => void stop(undefined, `timed out after ${plan.timeoutSeconds} s`),
      plan.timeoutSeconds * 1000,
    );
  }
  hooks.onReady(record);
  if (req.command.length > 0) void runLogged(sandbox, req.command, logPath(plan.id), hooks.echo);
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
