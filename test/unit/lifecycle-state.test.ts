// Sandbox records: atomic writes, reconcile on read (dead or recycled supervisor = crashed),
// gc of leftovers; `-p` specs; the control socket's message framing and an early refusal.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sandboxRecord } from "../helpers/record.js";
import { scratchDir } from "../helpers/vm.js";

const dataDir = scratchDir("wheellock-state-");
process.env.WHEELLOCK_DATA_DIR = dataDir;
delete process.env.WHEELLOCK_RUN_DIR;

const { collectGarbage, getRecord, listRecords, processStartTicks, statePath, writeRecord } =
  await import("../../src/state/index.js");
const { parsePublish } = await import("../../src/config/index.js");
const { MessageReader, Msg, encodeMessage, encodeJson, MAX_MESSAGE_BYTES } =
  await import("../../src/remote/protocol.js");
type SandboxRecord = import("../../src/state/index.js").SandboxRecord;

/** A live-looking record: its supervisor is this test process. */
function record(id: string, patch: Partial<SandboxRecord> = {}): SandboxRecord {
  return sandboxRecord(id, {
    status: "running",
    supervisorPid: process.pid,
    supervisorStartTicks: processStartTicks(process.pid) ?? 0,
    ...patch,
  });
}

/** A pid that is certainly dead: a child that has exited and been reaped. */
function deadPid(): number {
  return spawnSync("true").pid ?? 999_999;
}

test("records are written atomically (no temp files left) and read back", () => {
  writeRecord(record("vm-00000001"));
  const dir = join(dataDir, "sandboxes", "vm-00000001");
  assert.deepEqual(readdirSync(dir), ["state.json"]);
  const read = getRecord("vm-00000001");
  assert.equal(read.status, "running");
  assert.notEqual(read.updatedAt, "2026-01-01T00:00:00.000Z");
});

test("a live record whose supervisor is dead reads as crashed, and that is persisted", () => {
  writeRecord(record("vm-00000002", { supervisorPid: deadPid() }));
  assert.equal(getRecord("vm-00000002").status, "crashed");
  const onDisk = JSON.parse(readFileSync(statePath("vm-00000002"), "utf8")) as SandboxRecord;
  assert.equal(onDisk.status, "crashed");
  assert.match(onDisk.lastError ?? "", /supervisor \(pid \d+\) is gone/);
});

test("connecting to a stopped sandbox says why it stopped, where that was recorded", async () => {
  const { Sandbox } = await import("../../src/index.js");
  const why = "its VM used 15.3 s of CPU time, more than 15 s (maxCpuSeconds)";
  writeRecord(record("vm-0000000b", { status: "stopped", lastError: why }));
  assert.throws(() => Sandbox.connect("vm-0000000b"), {
    name: "ErrVMNotRunning",
    message: `sandbox vm-0000000b is not running (status: stopped): ${why}`,
  });
  writeRecord(record("vm-0000000c", { status: "stopped" }));
  assert.throws(() => Sandbox.connect("vm-0000000c"), {
    message: "sandbox vm-0000000c is not running (status: stopped)",
  });
});

test("a recycled pid (same pid, other start time) is not mistaken for the supervisor", () => {
  writeRecord(record("vm-00000003", { supervisorStartTicks: 1 }));
  assert.equal(getRecord("vm-00000003").status, "crashed");
});

test("stopped records stay stopped; list is newest first and skips garbage", () => {
  writeRecord(
    record("vm-00000004", {
      status: "stopped",
      supervisorPid: deadPid(),
      createdAt: "2027-01-01T00:00:00.000Z",
    }),
  );
  mkdirSync(join(dataDir, "sandboxes", "vm-0000000f"), { recursive: true });
  writeFileSync(join(dataDir, "sandboxes", "vm-0000000f", "state.json"), "{ torn");
  mkdirSync(join(dataDir, "sandboxes", "not-an-id"), { recursive: true });
  const list = listRecords();
  assert.equal(list[0]?.id, "vm-00000004");
  assert.equal(list[0]?.status, "stopped");
  assert.ok(!list.some((r) => r.id === "vm-0000000f"));
  assert.throws(() => getRecord("vm-0000000e"), { code: "ErrVMNotFound" });
});

test("gc skips live sandboxes and removes the run dirs of dead ones", () => {
  const runRoot = join(dataDir, "run");
  mkdirSync(join(runRoot, "vm-00000001"), { recursive: true });
  mkdirSync(join(runRoot, "vm-00000002"), { recursive: true });
  // A one-shot sandbox whose owner died: no record, only a run dir.
  mkdirSync(join(runRoot, "vm-00000005"), { recursive: true });
  writeFileSync(join(runRoot, "vm-00000005", "owner.pid"), `${deadPid()}\n`);
  const reports = collectGarbage();
  const byId = new Map(reports.map((r) => [r.id, r]));
  assert.equal(byId.get("vm-00000001")?.skipped, "sandbox is running");
  assert.deepEqual(byId.get("vm-00000002")?.cleaned, ["run_dir"]);
  assert.deepEqual(byId.get("vm-00000005")?.cleaned, ["run_dir"]);
  assert.ok(existsSync(join(runRoot, "vm-00000001")));
  assert.ok(!existsSync(join(runRoot, "vm-00000002")));
  assert.deepEqual(collectGarbage("vm-00000002")[0]?.cleaned, []);
});

test("-p specs: REMOTE, LOCAL:REMOTE, ADDR:LOCAL:REMOTE, per --address, with checks", () => {
  assert.deepEqual(parsePublish(["8080"], []), [
    { address: "127.0.0.1", localPort: 8080, remotePort: 8080 },
  ]);
  assert.deepEqual(parsePublish(["0:80"], ["127.0.0.1,::1"]), [
    { address: "127.0.0.1", localPort: 0, remotePort: 80 },
    { address: "::1", localPort: 0, remotePort: 80 },
  ]);
  assert.deepEqual(parsePublish(["0.0.0.0:9000:90"], []), [
    { address: "0.0.0.0", localPort: 9000, remotePort: 90 },
  ]);
  assert.throws(() => parsePublish(["70000"], []), /port must be 1-65535/);
  assert.throws(() => parsePublish(["0"], []), /port must be 1-65535/);
  assert.throws(() => parsePublish(["80"], ["example.com"]), /expected an IP literal/);
  assert.throws(() => parsePublish(["1:2:3:4"], []), /expected \[ADDR:\]LOCAL:REMOTE/);
  assert.throws(() => parsePublish(["8080:80", "8080:81"], []), /forwarded twice/);
});

test("control messages are reassembled from any split, and oversized ones are refused", () => {
  const wire = Buffer.concat([
    encodeJson(Msg.Request, { op: "stop" }),
    encodeMessage(Msg.Stdin, Buffer.from("abc")),
    encodeMessage(Msg.Stdin),
  ]);
  for (const step of [1, 2, 7, wire.length]) {
    const got: { type: number; payload: string }[] = [];
    const reader = new MessageReader((m) =>
      got.push({ type: m.type, payload: m.payload.toString() }),
    );
    for (let i = 0; i < wire.length; i += step) reader.push(wire.subarray(i, i + step));
    assert.deepEqual(got, [
      { type: Msg.Request, payload: '{"op":"stop"}' },
      { type: Msg.Stdin, payload: "abc" },
      { type: Msg.Stdin, payload: "" },
    ]);
  }
  const huge = Buffer.alloc(5);
  huge.writeUInt8(Msg.Stdin, 0);
  huge.writeUInt32BE(MAX_MESSAGE_BYTES + 1, 1);
  assert.throws(() => new MessageReader(() => undefined).push(huge), /control message of/);
});

test("concurrent writers never leave a torn record for readers", async () => {
  const id = "vm-000000cc";
  writeRecord(record(id));
  const writer = `
    const { writeRecord } = await import(${JSON.stringify(new URL("../../src/state/index.ts", import.meta.url).pathname)});
    const base = JSON.parse(process.argv[1]);
    for (let i = 0; i < 150; i++) writeRecord({ ...base, lastError: "w" + process.pid + "-" + i + "x".repeat(i * 50) });
  `;
  const { spawn } = await import("node:child_process");
  const children = Array.from({ length: 4 }, () =>
    spawn(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", writer, JSON.stringify(record(id))],
      {
        stdio: "inherit",
        env: process.env,
      },
    ),
  );
  const exited = Promise.all(
    children.map((c) => new Promise((resolve) => c.once("exit", resolve))),
  );
  let reads = 0;
  let done = false;
  void exited.then(() => (done = true));
  while (!done) {
    const text = readFileSync(statePath(id), "utf8");
    assert.equal((JSON.parse(text) as SandboxRecord).id, id);
    reads++;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.deepEqual(await exited, [0, 0, 0, 0]);
  assert.ok(reads > 10, `only ${reads} reads`);
  const last = JSON.parse(readFileSync(statePath(id), "utf8")) as SandboxRecord;
  assert.match(last.lastError ?? "", /^w\d+-149x+$/);
  assert.deepEqual(readdirSync(join(dataDir, "sandboxes", id)), ["state.json"]);
});

test("a write the supervisor refuses early rejects with its error, never an unhandled rejection", async () => {
  const { createServer } = await import("node:net");
  const { controlSocketPath } = await import("../../src/state/index.js");
  const runDirOf = (id: string) => join(dataDir, "run", id);
  const { Sandbox } = await import("../../src/sdk/index.js");
  const id = "vm-0000e401";
  writeRecord(record(id));
  mkdirSync(runDirOf(id), { recursive: true });
  // Like a read-only mount: the supervisor answers ERROR at once and hangs up.
  const server = createServer((socket) => {
    socket.once("data", () => {
      const error = { code: "ErrFile", message: "/r/x: Read-only file system", errno: 30 };
      socket.end(encodeJson(Msg.Error, error));
    });
  });
  await new Promise<void>((resolve) => server.listen(controlSocketPath(runDirOf(id)), resolve));
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  try {
    async function* slowUpload() {
      for (let i = 0; i < 20; i++) {
        await new Promise((r) => setTimeout(r, 10));
        yield Buffer.alloc(64 * 1024, i);
      }
    }
    await assert.rejects(Sandbox.connect(id).writeFile("/r/x", slowUpload()), {
      code: "ErrFile",
      message: "/r/x: Read-only file system",
    });
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off("unhandledRejection", onUnhandled);
    server.close();
  }
});

test("rm of a stopped sandbox waits for its supervisor's teardown: its last write cannot bring the record back", async () => {
  const { removeSettledSandbox } = await import("../../src/state/index.js");
  const { spawn } = await import("node:child_process");
  const id = "vm-0000005e";
  const path = statePath(id);
  // A supervisor that has recorded `stopped` and is still tearing down: it writes the record
  // once more just before it exits (as the real one does with the last usage).
  const last = JSON.stringify(record(id, { status: "stopped" }));
  const script =
    "const fs = require('node:fs'), path = require('node:path');" +
    "setTimeout(() => { fs.mkdirSync(path.dirname(process.argv[1]), { recursive: true });" +
    " fs.writeFileSync(process.argv[1], process.argv[2]); }, 400);";
  const teardown = spawn(process.execPath, ["-e", script, path, last]);
  const exited = new Promise((resolve) => teardown.once("exit", resolve));
  await new Promise((resolve) => teardown.once("spawn", resolve));
  const pid = teardown.pid as number;
  writeRecord(
    record(id, {
      status: "stopped",
      supervisorPid: pid,
      supervisorStartTicks: processStartTicks(pid) ?? 0,
    }),
  );
  await removeSettledSandbox(id);
  await exited;
  assert.equal(existsSync(path), false, "the record stays removed");
});
