// The operations of docs/OBSERVE.md cross the remote protocol: held requests, decisions (with
// the typed error for a request that is not waiting), usage, and exec ids.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createConnection, createServer, type Server } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { ErrNotFound } from "../../src/errors.js";
import type { ApprovalDecision, BlockedRequest, SandboxUsage } from "../../src/observe/index.js";
import { RemoteSandbox, serveConnection } from "../../src/remote/index.js";
import { ExecProcess, type SandboxApi } from "../../src/sandbox/index.js";

const HELD: BlockedRequest = {
  requestId: 12,
  method: "GET",
  url: "https://pypi.org/simple/",
  scheme: "https",
  host: "pypi.org",
  port: 443,
  attribution: { execId: 3, pid: 77, command: ["pip", "install", "x"] },
  heldAt: "2026-12-04T10:00:00.000Z",
  expiresAt: "2026-12-04T10:00:30.000Z",
};
const USAGE: SandboxUsage = {
  cpuSeconds: 1.5,
  peakMemoryBytes: 123,
  diskWrittenBytes: 4096,
  mountWrittenBytes: 10,
  network: {
    bytes: 999,
    requests: 2,
    byHost: { "pypi.org": { requests: 2, bytesIn: 900, bytesOut: 20 } },
    bySecret: {},
  },
  execs: { count: 3, running: 1, totalDurationMs: 40, maxDurationMs: 30 },
  uptimeSeconds: 9.5,
};

const decisions: [number, ApprovalDecision][] = [];
const fake = {
  id: "vm-0000abcd",
  pendingRequests: async () => [HELD],
  decideRequest: async (id: number, decision: ApprovalDecision) => {
    if (id !== HELD.requestId) throw new ErrNotFound(`request ${id} is not waiting for approval`);
    decisions.push([id, decision]);
  },
  usage: async () => USAGE,
  spawn: () => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    stdout.end();
    stderr.end();
    return new ExecProcess(
      {
        started: Promise.resolve(55),
        execId: Promise.resolve(9),
        exit: Promise.resolve({ exitCode: 0, signal: 0 }),
        stdout,
        stderr,
        stdin: new PassThrough(),
        signal: () => undefined,
        resize: () => undefined,
        close: () => undefined,
      },
      Date.now(),
      () => undefined,
    );
  },
} as unknown as SandboxApi;

let server: Server;
let remote: RemoteSandbox;
const dir = mkdtempSync(join(tmpdir(), "wl-remote-observe-"));
before(async () => {
  const path = join(dir, "s.sock");
  server = createServer((socket) => serveConnection(fake, socket));
  await new Promise<void>((r) => server.listen(path, r));
  remote = new RemoteSandbox("vm-0000abcd", async () => createConnection(path));
});
after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

test("pending requests and usage come back as the sandbox reported them", async () => {
  assert.deepEqual(await remote.pendingRequests(), [HELD]);
  assert.deepEqual(await remote.usage(), USAGE);
});

test("a decision reaches the sandbox; deciding a request that is not waiting is ErrNotFound", async () => {
  await remote.decideRequest(12, "sandbox");
  assert.deepEqual(decisions, [[12, "sandbox"]]);
  await assert.rejects(remote.decideRequest(13, "once"), (err: unknown) => {
    assert.ok(err instanceof ErrNotFound);
    assert.match((err as Error).message, /request 13 is not waiting/);
    return true;
  });
});

test("an exec's id crosses the wire with its pid", async () => {
  const proc = remote.spawn(["true"]);
  assert.equal(await proc.pid, 55);
  assert.equal(await proc.execId, 9);
  assert.equal((await proc.wait()).execId, 9);
});
