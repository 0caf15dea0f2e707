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
