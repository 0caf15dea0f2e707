// Long-lived sandboxes under stress and faults: five started at once, then SIGKILL of a
// supervisor, of a QEMU and of a CLI in the middle of an exec; `list` must tell the truth and
// `gc` / `prune` must leave nothing behind.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isolateDataDir, runDirEntries, scratchDir } from "../helpers/vm.js";
import { findQemuBinary } from "../../src/vmm/index.js";
import { Sandbox } from "../../src/index.js";
import {
  CLI,
  inspect,
  killAllSupervisors,
  pidAlive,
  startDetached,
  waitUntil,
  wheellock,
  wheellockSync,
} from "../helpers/lifecycle.js";

const dataDir = isolateDataDir();
let ids: string[] = [];

before(async () => {
  // Six at once (five, plus one with a deadline): ids, records and run dirs must not collide.
  const extra = (i: number) =>
    i === 4 ? ["--graceful-shutdown", "20s"] : i === 5 ? ["--timeout", "60"] : [];
  ids = await Promise.all(Array.from({ length: 6 }, (_, i) => startDetached(extra(i))));
});

after(async () => {
  await wheellock(["kill", "--all"]);
  killAllSupervisors(dataDir);
});

function statusOf(id: string): string {
  const rows = JSON.parse(wheellockSync(["list", "--json"]).stdout) as {
    id: string;
    status: string;
  }[];
  return rows.find((r) => r.id === id)?.status ?? "missing";
}

test("six sandboxes start concurrently, each distinct and running", async () => {
  assert.equal(new Set(ids).size, 6);
  const running = JSON.parse(wheellockSync(["list", "--running", "--json"]).stdout) as {
    id: string;
  }[];
  assert.deepEqual(running.map((r) => r.id).sort(), [...ids].sort());
  const hostnames = await Promise.all(ids.map((id) => wheellock(["exec", id, "--", "hostname"])));
  assert.deepEqual(
    hostnames.map((r) => r.stdout.trim()),
    ids,
  );
  // 20 concurrent execs into one of them while all five run.
  const sb = Sandbox.connect(ids[3] as string);
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      sb.exec(["sh", "-c", `echo ${i}; head -c 100000 /dev/zero`]),
    ),
  );
  results.forEach((r, i) => {
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout.length, `${i}\n`.length + 100_000);
  });
});

test("SIGKILL of the supervisor: list says crashed, QEMU dies with it, gc cleans the run dir", async () => {
  const id = ids[0] as string;
  const { supervisorPid, qemuPid } = inspect(id);
  process.kill(supervisorPid, "SIGKILL");
  await waitUntil("QEMU follows its supervisor", () => !qemuPid || !pidAlive(qemuPid));
  assert.equal(statusOf(id), "crashed");
  assert.ok(runDirEntries(dataDir).includes(id), "the run dir is still there before gc");
  const gc = await wheellock(["gc", id]);
  assert.deepEqual([gc.code, gc.stdout], [0, `${id}: cleaned run_dir\n`]);
  assert.ok(!runDirEntries(dataDir).includes(id));
  assert.equal((await wheellock(["gc", id])).stdout, `${id}: no resources to clean\n`);
});

test("a QEMU that outlived its supervisor: list says crashed, gc kills it and cleans up", async () => {
  // Where the parent-death signal is missing (no setpriv on the host), QEMU survives its
  // supervisor. Simulate that host: the same QEMU with the parent-death signal cleared.
  // Not in the private scratch dir: as root, QEMU (and so this wrapper) runs as a jailed user
  // of its own, who must be able to read and run it.
  const wrapperDir = scratchDir("wheellock-qemu-wrapper-");
  chmodSync(wrapperDir, 0o755);
  const wrapper = join(wrapperDir, "qemu-without-pdeathsig");
  writeFileSync(
    wrapper,
    `#!/bin/sh\nexec setpriv --pdeathsig clear -- ${findQemuBinary()} "$@"\n`,
    { mode: 0o755 },
  );
  const saved = process.env.WHEELLOCK_QEMU;
  process.env.WHEELLOCK_QEMU = wrapper;
  const started = startDetached();
  if (saved === undefined) delete process.env.WHEELLOCK_QEMU;
  else process.env.WHEELLOCK_QEMU = saved;
  const id = await started;
  const { supervisorPid, qemuPid } = inspect(id);
  assert.ok(qemuPid && pidAlive(qemuPid));
  process.kill(supervisorPid, "SIGKILL");
  await waitUntil("the supervisor is gone", () => !pidAlive(supervisorPid));
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(pidAlive(qemuPid), "this QEMU has no parent-death signal: it keeps running");
  assert.equal(statusOf(id), "crashed");
  const gc = await wheellock(["gc", id]);
  assert.deepEqual([gc.code, gc.stdout], [0, `${id}: cleaned qemu, run_dir\n`]);
  await waitUntil("gc killed the orphaned QEMU", () => !pidAlive(qemuPid));
  assert.ok(!runDirEntries(dataDir).includes(id));
  // Out of the counts the last test checks.
  assert.equal((await wheellock(["rm", id])).code, 0);
});

test("SIGKILL of QEMU: the supervisor records the crash and exits", async () => {
  const id = ids[1] as string;
  const { supervisorPid, qemuPid } = inspect(id);
  process.kill(qemuPid as number, "SIGKILL");
  await waitUntil("the supervisor exits", () => !pidAlive(supervisorPid));
  const record = inspect(id);
  assert.equal(record.status, "crashed");
  assert.match(record.lastError ?? "", /VM exited unexpectedly/);
  assert.ok(!runDirEntries(dataDir).includes(id), "the supervisor removed its run dir");
  const exec = await wheellock(["exec", id, "--", "true"]);
  // With the recorded reason.
  assert.equal(
    exec.stderr,
    `wheellock: sandbox ${id} is not running (status: crashed): ${record.lastError}\n`,
  );
});

test("SIGKILL of a CLI mid-exec: the guest command is killed, the sandbox keeps serving", async () => {
  const id = ids[2] as string;
  const marker = "wl-orphan-check";
  const cli = spawn(
    process.execPath,
    [...CLI, "exec", id, "--", "sh", "-c", `echo up; exec sh -c 'sleep 600; true' ${marker}`],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  cli.stdout.on("data", (c: Buffer) => (out += c.toString()));
  await waitUntil("the command runs", () => out.includes("up"), 60_000);
  // `[k]`: the pattern does not match the grep (or sh) that carries it.
  const count = `grep -l ${marker.slice(0, -1)}[${marker.slice(-1)}] /proc/[0-9]*/cmdline 2>/dev/null | wc -l`;
  const running = () => wheellockSync(["exec", id, "--", "sh", "-c", count]).stdout.trim();
  assert.equal(running(), "1", "the command runs in the guest before its CLI dies");
  cli.kill("SIGKILL");
  await waitUntil("the guest command is gone", () => running() === "0", 60_000);
  assert.equal(statusOf(id), "running");
});

test("--graceful-shutdown: kill gives running commands SIGTERM and time to finish", async () => {
  const id = ids[4] as string;
  const cli = spawn(
    process.execPath,
    [
      ...CLI,
      "exec",
      id,
      "--",
      "sh",
      "-c",
      "trap 'sleep 1; echo cleaned-up; exit 3' TERM; echo up; while :; do sleep 0.1; done",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  cli.stdout.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => cli.once("exit", resolve));
  await waitUntil("the command runs", () => out.includes("up"), 60_000);
  const killed = await wheellock(["kill", id]);
  assert.equal(killed.stdout, `Killed ${id}\n`);
  assert.equal(await exited, 3);
  assert.equal(out, "up\ncleaned-up\n");
  assert.equal(statusOf(id), "stopped");
});

test("--timeout: a detached sandbox stops cleanly at its deadline", async () => {
  const id = ids[5] as string;
  await waitUntil("the deadline passes", () => statusOf(id) === "stopped", 120_000);
  assert.equal(inspect(id).lastError, "timed out after 60 s");
});

test("kill --all, prune and gc leave nothing behind", async () => {
  const gcAll = await wheellock(["gc"]);
  assert.match(gcAll.stdout, /skipped \(sandbox is running\)/);
  assert.match(gcAll.stdout, /Reconciled 6 sandboxes\n$/);
  const killed = await wheellock(["kill", "--all"]);
  assert.equal(killed.code, 0);
  for (const id of ids.slice(2, 4)) assert.match(killed.stdout, new RegExp(`Killed ${id}`));
  for (const id of ids.slice(2)) assert.equal(statusOf(id), "stopped");
  const prune = await wheellock(["prune"]);
  assert.match(prune.stdout, /Pruned 6 sandboxes\n$/);
  assert.equal(wheellockSync(["list", "--json"]).stdout.trim(), "[]");
  assert.deepEqual(runDirEntries(dataDir), []);
  assert.ok(!existsSync(join(dataDir, "sandboxes", ids[0] as string)));
});
