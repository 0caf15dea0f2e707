// A node told to stop lets the operations running finish (within its grace) and does not wait
// for connections kept idle between operations: it asks those to go (IDLE). It waited for
// every open connection, so one kept idle held a shutdown for the whole grace.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Sandbox } from "../../src/index.js";
import { FakeHost } from "../helpers/fake-host.js";
import { startTestNode } from "../helpers/test-node.js";

const dataDir = mkdtempSync(join(tmpdir(), "wheellock-serve-drain-"));
process.env.WHEELLOCK_DATA_DIR = dataDir;
after(() => rmSync(dataDir, { recursive: true, force: true }));

test("close(grace): a running operation finishes; a kept idle connection does not hold it", async () => {
  const host = new FakeHost(dataDir);
  const n = await startTestNode(host, dataDir, { nodeId: "node-drain" });
  try {
    const sb = await Sandbox.create({ remote: n.remote });
    // Kept idle by the SDK after this.
    assert.equal((await sb.exec(["echo", "one"])).stdout, "one\n");
    const running = sb.spawn("cat");
    await running.pid;
    const started = Date.now();
    const closing = n.running.close(20_000);
    // The running command still gets its input and ends cleanly.
    await new Promise((r) => setTimeout(r, 100));
    running.stdin.end("last words");
    const out: Buffer[] = [];
    running.stdout.on("data", (c: Buffer) => out.push(c));
    assert.equal((await running.wait()).exitCode, 0);
    assert.equal(Buffer.concat(out).toString(), "last words");
    await closing;
    assert.ok(Date.now() - started < 10_000, `close took ${Date.now() - started} ms`);
  } finally {
    await host.close();
  }
});
