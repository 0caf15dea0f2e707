// Ctrl-C during a sandbox's start (run, run --rm=false, a supervisor told to stop while it
// starts): the process exits through its `exit` event, so the ResourceStack's synchronous
// releases run (the run dir goes) instead of dying by the signal with them left behind.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const scratch = mkdtempSync(join(tmpdir(), "wheellock-exit-signal-"));
process.on("exit", () => rmSync(scratch, { recursive: true, force: true }));
const util = join(import.meta.dirname, "../../src/util/index.ts");

/** A process whose "start" never ends, holding a run dir; `signal` sent once it is ready. */
async function cutStart(name: string, signal: NodeJS.Signals) {
  const runDir = join(scratch, name, "run");
  mkdirSync(runDir, { recursive: true });
  writeFileSync(join(runDir, "disk0.img"), "checkpoint-time content\n");
  const why = join(scratch, name, "why");
  const child = `
    const { writeFileSync } = await import("node:fs");
    const { ResourceStack, exitOnSignalDuring, removeTreeSync } = await import(${JSON.stringify(util)});
    const resources = new ResourceStack();
    resources.defer("run dir", () => undefined, () => removeTreeSync(${JSON.stringify(runDir)}));
    await exitOnSignalDuring(
      () => { console.log("starting"); return new Promise(() => setInterval(() => {}, 1000)); },
      (signal) => writeFileSync(${JSON.stringify(why)}, signal),
    );`;
  const proc = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", child], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve) => proc.stdout.once("data", () => resolve()));
  proc.kill(signal);
  const [code, killedBy] = await new Promise<[number | null, string | null]>((resolve) =>
    proc.once("exit", (c, s) => resolve([c, s])),
  );
  return {
    code,
    killedBy,
    runDirLeft: existsSync(runDir),
    why: existsSync(why) ? readFileSync(why, "utf8") : undefined,
  };
}

for (const [signal, code] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
] as const)
  test(`${signal} during a start: exit ${code} through the exit event, the run dir removed`, async () => {
    assert.deepEqual(await cutStart(signal.toLowerCase(), signal), {
      code,
      killedBy: null,
      runDirLeft: false,
      why: signal,
    });
  });

/**
 * A child that starts (`start` resolves at once), then sits in the window after the start and
 * before any forwarder of the command's signals (`wheellock run` waiting for its command's
 * pid; a supervisor starting its control server), holding a run dir. `how`: "before" as run
 * and the supervisor did (exitOnSignalDuring over the start alone); "now" as they do.
 */
async function cutAfterStart(
  name: string,
  how: "before" | "now",
  forwarder = false,
  signal: NodeJS.Signals = "SIGINT",
) {
  const runDir = join(scratch, name, "run");
  mkdirSync(runDir, { recursive: true });
  const forwarded = join(scratch, name, "forwarded");
  const child = `
    const { writeFileSync } = await import("node:fs");
    const u = await import(${JSON.stringify(util)});
    const resources = new u.ResourceStack();
    resources.defer("run dir", () => undefined, () => u.removeTreeSync(${JSON.stringify(runDir)}));
    const started = () => Promise.resolve();
    if (${JSON.stringify(how)} === "before") await u.exitOnSignalDuring(started);
    else {
      const signals = new u.SignalHandling(u.exitOnSignal());
      await started();
      signals.set(u.exitOnUnhandledSignal());
    }
    const forward = () => {
      writeFileSync(${JSON.stringify(forwarded)}, "yes");
      process.off("SIGINT", forward);
      console.log("forwarder gone");
    };
    if (${forwarder}) process.on("SIGINT", forward);
    setInterval(() => {}, 1000);
    console.log("in the window");`;
  const proc = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", child], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = () => new Promise<void>((resolve) => proc.stdout.once("data", () => resolve()));
  await line();
  if (forwarder) {
    // The forwarder takes the first Ctrl-C (to the guest command); once it is gone, the next
    // one ends the run with its cleanup.
    const gone = line();
    proc.kill("SIGINT");
    await gone;
  }
  proc.kill(signal);
  const [code, killedBy] = await new Promise<[number | null, string | null]>((resolve) =>
    proc.once("exit", (c, s) => resolve([c, s])),
  );
  return { code, killedBy, runDirLeft: existsSync(runDir), forwarded: existsSync(forwarded) };
}

test("attack: Ctrl-C after the start, before the command's forwarder, leaves no run dir", async () => {
  // As it was: the signal's default action, the run dir left for `wheellock gc`.
  assert.deepEqual(await cutAfterStart("window-before", "before"), {
    code: null,
    killedBy: "SIGINT",
    runDirLeft: true,
    forwarded: false,
  });
  assert.deepEqual(await cutAfterStart("window-now", "now"), {
    code: 130,
    killedBy: null,
    runDirLeft: false,
    forwarded: false,
  });
});

test("while a forwarder takes Ctrl-C, the fallback lets it; once it is gone, Ctrl-C cleans up", async () => {
  assert.deepEqual(await cutAfterStart("forwarder", "now", true), {
    code: 130,
    killedBy: null,
    runDirLeft: false,
    forwarded: true,
  });
});

test("Ctrl-\\ (SIGQUIT) in the same window cleans up too, where its core dump left the run dir", async () => {
  assert.deepEqual(await cutAfterStart("quit", "now", false, "SIGQUIT"), {
    code: 131,
    killedBy: null,
    runDirLeft: false,
    forwarded: false,
  });
});
