// The command lines matchlock's SDKs run (reference/matchlock-rpc.md §1.2, §1.3): `rpc` as a
// process (ASCII lines on stdout, nothing else there, status 0 soon after stdin EOF or
// SIGTERM), `rm <id>`, and `volume create|ls|rm` with `--json`. No VM.
import assert from "node:assert/strict";
import { test } from "node:test";
import { writeRecord } from "../../src/state/index.js";
import { wheellockSync } from "../helpers/lifecycle.js";
import { sandboxRecord } from "../helpers/record.js";
import { scratchDir } from "../helpers/vm.js";
import { EXIT_BOUND_MS, endInput, startRpcProcess, type RpcProcess } from "./rpc-process.js";

const dataDir = scratchDir("wheellock-rpc-cli-");
const env = { ...process.env, WHEELLOCK_DATA_DIR: dataDir };

const wheellock = (args: string[]) => wheellockSync(args, env);

function startRpc(): RpcProcess {
  return startRpcProcess(env, true);
}

/** Resolves once the server has written `n` lines. */
function lineCount(rpc: RpcProcess, n: number): Promise<void> {
  return rpc.client.until(() => rpc.client.raw.length >= n, 30_000);
}

test("rpc as a process: protocol lines only on stdout, status 0 soon after stdin EOF", async () => {
  const rpc = startRpc();
  rpc.client.write("garbage\n");
  rpc.client.write('{"jsonrpc":"2.0","method":"exec","id":1,"params":{"command":"✓"}}\n');
  rpc.client.write('{"jsonrpc":"2.0","method":"log_stream","id":2}\n');
  await lineCount(rpc, 3);
  assert.deepEqual(
    rpc.client.raw.map((l) => JSON.parse(l)),
    [
      { jsonrpc: "2.0", error: { code: -32700, message: "Parse error" } },
      { jsonrpc: "2.0", error: { code: -32000, message: "VM not created" }, id: 1 },
      { jsonrpc: "2.0", error: { code: -32000, message: "VM not created" }, id: 2 },
    ],
  );
  // Half a line, then EOF: stdin closed mid-stream.
  rpc.child.stdin.write('{"jsonrpc":"2.0","method":"cre');
  const exit = await endInput(rpc);
  assert.deepEqual([exit.code, exit.signal], [0, null]);
  assert.ok(exit.afterEofMs < EXIT_BOUND_MS, `exited ${exit.afterEofMs} ms after EOF`);
  assert.equal(rpc.client.raw.length, 4);
  for (const line of rpc.client.raw) assert.match(line, /^[\x20-\x7e]+$/);
});

test("rpc ends with status 0 on SIGTERM (what `wheellock kill` sends its owner)", async () => {
  const rpc = startRpc();
  rpc.client.write('{"jsonrpc":"2.0","method":"log","id":1}\n');
  await lineCount(rpc, 1);
  const at = Date.now();
  rpc.child.kill("SIGTERM");
  const exit = await rpc.exited;
  assert.deepEqual([exit.code, exit.signal], [0, null]);
  assert.ok(exit.at - at < EXIT_BOUND_MS, `exited ${exit.at - at} ms after SIGTERM`);
});

test("rm <id> exits 0 for a sandbox that is stopped, and says so", () => {
  writeRecordIn(dataDir, "vm-0000beef");
  const r = wheellock(["rm", "vm-0000beef"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "Removed vm-0000beef\n");
  assert.notEqual(wheellock(["rm", "vm-0000beef"]).code, 0);
});

function writeRecordIn(dir: string, id: string): void {
  const saved = process.env.WHEELLOCK_DATA_DIR;
  process.env.WHEELLOCK_DATA_DIR = dir;
  try {
    writeRecord(sandboxRecord(id));
  } finally {
    if (saved === undefined) delete process.env.WHEELLOCK_DATA_DIR;
    else process.env.WHEELLOCK_DATA_DIR = saved;
  }
}

test("volume create/ls --json shapes and volume rm messages, as the SDKs parse them", () => {
  const created = wheellock(["volume", "create", "sdkvol", "--size", "16", "--json"]);
  assert.equal(created.code, 0, created.stderr);
  const v = JSON.parse(created.stdout) as { name: string; size: string; path: string };
  assert.deepEqual(Object.keys(v), ["name", "size", "path"]);
  assert.deepEqual([v.name, v.size], ["sdkvol", "16.0 MB"]);
  assert.match(v.path, /sdkvol\.ext4$/);
  const list = wheellock(["volume", "ls", "--json"]);
  assert.equal(list.code, 0);
  assert.deepEqual(JSON.parse(list.stdout), [v]);
  const rm = wheellock(["volume", "rm", "sdkvol"]);
  assert.deepEqual([rm.code, rm.stdout], [0, "Removed volume sdkvol\n"]);
  assert.deepEqual(JSON.parse(wheellock(["volume", "ls", "--json"]).stdout), []);
  const missing = wheellock(["volume", "rm", "sdkvol"]);
  assert.notEqual(missing.code, 0);
  // The Go SDK's acceptance test looks for this text.
  assert.match(missing.stderr, /named volume not found/);
});

test("rpc has --help and is listed", () => {
  const r = wheellock(["rpc", "--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^Usage: wheellock rpc /);
  assert.match(wheellock(["--help"]).stdout, /\n {2}rpc /);
});
