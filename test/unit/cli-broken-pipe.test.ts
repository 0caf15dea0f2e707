// When the reader of the CLI's output goes away (`| head -c1`), the CLI stops quietly with
// status 141 (128 + SIGPIPE) instead of a stack trace (issue 19, finding 7). No VM: `log` and
// `list` read records from a scratch data dir. The VM side (run, exec) is test/vm/cli.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { wheellockIntoHead } from "../helpers/broken-pipe.js";
import { sandboxRecord } from "../helpers/record.js";
import { scratchDir } from "../helpers/vm.js";

const dataDir = scratchDir("wheellock-epipe-");
process.env.WHEELLOCK_DATA_DIR = dataDir;
const { logPath, writeRecord } = await import("../../src/state/index.js");

const stoppedSandbox = (id: string): void => writeRecord(sandboxRecord(id));

const id = "vm-0e9e0001";
stoppedSandbox(id);
mkdirSync(join(logPath(id), ".."), { recursive: true });
// Far more than a pipe holds (64 KiB), written in 64 KiB pieces.
writeFileSync(logPath(id), "y\n".repeat(4 * 1024 * 1024));

test("log | head -c1: no stack trace, status 141", async () => {
  assert.deepEqual(await wheellockIntoHead(["log", id]), { code: 141, stderr: "" });
});

test("log -f | head -c1 ends (it used to crash, and would otherwise follow forever)", async () => {
  assert.deepEqual(await wheellockIntoHead(["log", "-f", id]), { code: 141, stderr: "" });
});

test("list --json | head -c1 with more records than a pipe holds", async () => {
  for (let i = 0; i < 400; i++) stoppedSandbox(`vm-1e9e${i.toString(16).padStart(4, "0")}`);
  assert.deepEqual(await wheellockIntoHead(["list", "--json"]), { code: 141, stderr: "" });
});
