// Connections kept between operations (issue 13): the node never closes one under an
// operation its client already sent (it asks with IDLE first and serves a REQUEST that crossed
// it), and idle kept connections hold no operation slot: a client keeping spare connections
// does not lock other clients out of a full node.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WebSocket } from "ws";
import { Sandbox } from "../../src/index.js";
import { encodeJson, encodeMessage, MessageReader, Msg } from "../../src/remote/index.js";
import { FakeHost } from "../helpers/fake-host.js";
import { waitUntil } from "../helpers/lifecycle.js";
import { startTestNode, type TestNode } from "../helpers/test-node.js";

const dataDir = mkdtempSync(join(tmpdir(), "wheellock-serve-idle-"));
process.env.WHEELLOCK_DATA_DIR = dataDir;
process.on("exit", () => rmSync(dataDir, { recursive: true, force: true }));

let host: FakeHost;
let n: TestNode;
/** A node that runs 2 operations at once and keeps idle connections the default minute. */
let full: TestNode;
before(async () => {
  host = new FakeHost(dataDir);
  // A node that asks connections silent for 200 ms to go.
  n = await startTestNode(host, dataDir, { nodeId: "node-idle", requestWaitMs: 200 });
  full = await startTestNode(host, dataDir, { nodeId: "node-full", maxOperations: 2 });
});
after(async () => {
  await n.running.close();
  await full.running.close();
  await host.close();
});

/** A WebSocket to the sandbox's operation endpoint, by hand, and the message types it gets. */
async function rawConnection(id: string, token: string) {
  const url = `${n.running.url.replace(/^http/, "ws")}/v1/sandboxes/${encodeURIComponent(id)}/operation`;
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
  const types: number[] = [];
  const reader = new MessageReader((msg) => types.push(msg.type));
  ws.on("message", (data: Buffer) => reader.push(data));
  let closed = false;
  ws.once("close", () => (closed = true));
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  return { ws, types, closed: () => closed };
}

const until = (what: string, cond: () => boolean): Promise<void> => waitUntil(what, cond, 5000, 10);

test("a REQUEST sent while the node closes an idle connection is served, not cut off", async () => {
  const sb = await Sandbox.create({ remote: n.remote });
  const c = await rawConnection(sb.id, n.token);
  try {
    c.ws.send(encodeJson(Msg.Request, { op: "allowed-hosts" }));
    await until("the first operation ends", () => c.types.includes(Msg.OpEnd));
    c.ws.send(encodeMessage(Msg.OpEnd));
    // Silent past the node's 200 ms: it asks the client to go (IDLE) rather than closing.
    await until("IDLE", () => c.types.includes(Msg.Idle));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(c.closed(), false, "the node closed a connection its client may be using");
    // A client that sent its next REQUEST before it saw IDLE: the operation runs.
    const before = c.types.length;
    c.ws.send(encodeJson(Msg.Request, { op: "allowed-hosts" }));
    await until("the second operation ends", () => c.types.slice(before).includes(Msg.OpEnd));
    assert.deepEqual(c.types.slice(before), [Msg.Result, Msg.OpEnd]);
  } finally {
    c.ws.terminate();
  }
});

test("the SDK closes a kept connection the node asked to go, and goes on", async () => {
  const sb = await Sandbox.create({ remote: n.remote });
  assert.equal((await sb.exec(["echo", "one"])).stdout, "one\n");
  // Past the node's wait: its IDLE reached the kept connection, which the client closed.
  await new Promise((r) => setTimeout(r, 400));
  assert.equal((await sb.exec(["echo", "two"])).stdout, "two\n");
});

test("connections another client keeps idle do not lock a full node's operations", async () => {
  const a = await Sandbox.create({ remote: full.remote });
  const b = await Sandbox.create({ remote: full.remote });
  // A runs two commands at once (the node's limit), then keeps both connections for later.
  const cats = [a.spawn("cat"), a.spawn("cat")];
  await Promise.all(cats.map((p) => p.pid));
  for (const p of cats) p.stdin.end("x");
  await Promise.all(cats.map((p) => p.wait()));
  // B's operation needs a slot: one of A's idle connections makes room.
  assert.equal((await b.exec(["echo", "b"])).stdout, "b\n");
  // And A goes on as well.
  assert.equal((await a.exec(["echo", "a"])).stdout, "a\n");
});
