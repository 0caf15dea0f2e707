// Kept WebSockets: a remote sandbox carries its operations one after another over one
// connection (and the node over one supervisor connection), so an operation does not wait for
// TCP, the upgrade and the token check. Each connection is authenticated on its own with its
// sandbox's token, is never shared, closes when idle (on both sides), is never reused after an
// operation that ended abnormally, and spares never take the node's room for operations.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WebSocket } from "ws";
import { ErrAuth, ErrCapacity, Sandbox, type NodeSandbox } from "../../src/index.js";
import {
  Msg,
  RemoteSandbox,
  SPARE_HEADER,
  webSocketConnector,
  type PooledConnector,
} from "../../src/remote/index.js";
import type { PreparedOperation, RunningNode } from "../../src/serve/index.js";
import { FakeHost } from "../helpers/fake-host.js";
import { startTestNode } from "../helpers/test-node.js";
import { waitUntil } from "../helpers/lifecycle.js";

const dataDir = mkdtempSync(join(tmpdir(), "wheellock-serve-spares-"));
process.env.WHEELLOCK_DATA_DIR = dataDir;
process.on("exit", () => rmSync(dataDir, { recursive: true, force: true }));

/** A fake host that counts the connections the node accepted and closed, by sandbox. */
class CountingHost extends FakeHost {
  readonly accepted = new Map<string, number>();
  readonly closed = new Map<string, number>();
  override prepareOperation(id: string): PreparedOperation {
    this.accepted.set(id, (this.accepted.get(id) ?? 0) + 1);
    const prepared = super.prepareOperation(id);
    return {
      serve: (stream, input) => {
        stream.once("close", () => this.closed.set(id, (this.closed.get(id) ?? 0) + 1));
        prepared.serve(stream, input);
      },
    };
  }
}

async function node(name: string, extra: { maxOperations?: number; requestWaitMs?: number }) {
  const host = new CountingHost(dataDir);
  const { running, token } = await startTestNode(host, dataDir, {
    nodeId: name,
    maxOperations: extra.maxOperations ?? 64,
    ...(extra.requestWaitMs !== undefined ? { requestWaitMs: extra.requestWaitMs } : {}),
  });
  return { host, running, token };
}

function opUrl(n: RunningNode, id: string): string {
  return `${n.url.replace(/^http/, "ws")}/v1/sandboxes/${encodeURIComponent(id)}/operation`;
}

const local = (id: string): string => id.split("@")[0] as string;

/** A spare's handshake by hand: resolves with the HTTP status (101: accepted). */
function spareHandshake(url: string, token: string, held: WebSocket[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${token}`, [SPARE_HEADER]: "1" },
    });
    ws.once("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once("open", () => {
      held.push(ws);
      resolve(101);
    });
    ws.once("error", reject);
  });
}

describe("spares", () => {
  let n: Awaited<ReturnType<typeof node>>;
  let a: NodeSandbox;
  let b: NodeSandbox;
  const pools: PooledConnector[] = [];
  before(async () => {
    n = await node("node-spares", { requestWaitMs: 300 });
    a = await Sandbox.create({ remote: { url: n.running.url, token: n.token } });
    b = await Sandbox.create({ remote: { url: n.running.url, token: n.token } });
  });
  after(async () => {
    for (const p of pools) p.close();
    await n.running.close();
    await n.host.close();
  });

  function pooled(id: string, token: string, idleMs = 5000): RemoteSandbox {
    const pool = webSocketConnector({ url: opUrl(n.running, id), token }, id, { idleMs });
    pools.push(pool);
    return new RemoteSandbox(id, pool);
  }

  test("operations one after another share one connection", async () => {
    const sb = pooled(a.id, a.token as string);
    const id = local(a.id);
    const start = n.host.accepted.get(id) ?? 0;
    for (let i = 0; i < 3; i++) assert.equal((await sb.exec(["echo", `${i}`])).stdout, `${i}\n`);
    await sb.writeFile("/kept", "data");
    assert.equal((await sb.readFile("/kept")).toString(), "data");
    assert.equal((await sb.exec("cat", { stdin: "in" })).stdout, "in");
    await assert.rejects(sb.readFile("/no-such-file"), /no-such-file/);
    assert.equal((await sb.exec(["echo", "after an error"])).stdout, "after an error\n");
    assert.equal(n.host.accepted.get(id), start + 1);
  });

  test("the SDK's remote sandbox (Sandbox.connect) reuses its connection too", async () => {
    // Through NodeSandbox, not a bare connector: its connector must hand connections back.
    const sb = Sandbox.connect(a.id, { remote: { url: n.running.url, token: a.token as string } });
    const id = local(a.id);
    const start = n.host.accepted.get(id) ?? 0;
    for (let i = 0; i < 4; i++) assert.equal((await sb.exec(["echo", `${i}`])).stdout, `${i}\n`);
    await sb.writeFile("/sdk", "data");
    assert.equal((await sb.readFile("/sdk")).toString(), "data");
    // Its idle connections close with the node (they do not hold the test open).
    assert.equal(n.host.accepted.get(id), start + 1);
  });

  test("each pool holds its own sandbox's token: A's connections never open B", async () => {
    const onA = pooled(a.id, a.token as string);
    const onB = pooled(b.id, b.token as string);
    const startB = n.host.accepted.get(local(b.id)) ?? 0;
    await onA.writeFile("/where", "a");
    await onB.writeFile("/where", "b");
    for (let i = 0; i < 3; i++) {
      assert.equal((await onA.readFile("/where")).toString(), "a");
      assert.equal((await onB.readFile("/where")).toString(), "b");
    }
    assert.equal(n.host.accepted.get(local(b.id)), startB + 1);
    // A's token against B: every operation refused, and no connection is ever accepted for B.
    const crossed = pooled(b.id, a.token as string);
    for (let i = 0; i < 3; i++) await assert.rejects(crossed.exec(["true"]), ErrAuth);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(n.host.accepted.get(local(b.id)), startB + 1);
  });

  test("an operation that ends abnormally closes its connection; the others go on", async () => {
    const sb = pooled(a.id, a.token as string);
    const id = local(a.id);
    const other = sb.spawn("cat");
    await other.pid;
    // Abandoned by the client mid-stream: only its own connection goes (other connections
    // of this node may close meanwhile: idle ones wait 300 ms here).
    const cut = sb.spawn(["sh", "-c", "cat; echo never"]);
    await cut.pid;
    const closed = n.host.closed.get(id) ?? 0;
    cut.abandon();
    await waitUntil("its connection closes", () => (n.host.closed.get(id) ?? 0) > closed, 5000);
    assert.equal((await sb.exec(["echo", "next"])).stdout, "next\n");
    other.stdin.end("still here");
    assert.equal((await other.wait()).exitCode, 0);
  });

  test("a connection the node drops (it waited too long) is not reused; operations go on", async () => {
    const sb = pooled(a.id, a.token as string);
    const id = local(a.id);
    await sb.exec(["true"]);
    // The node closes a connection that sends no request within requestWaitMs (300 ms here):
    // all of this sandbox's, since none carries an operation now.
    await waitUntil(
      "the node drops them",
      () => n.host.closed.get(id) === n.host.accepted.get(id),
      5000,
    );
    // Its close reaches this client a moment after the node counted it.
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await sb.exec(["echo", "after"])).stdout, "after\n");
    assert.equal((await sb.exec(["echo", "again"])).stdout, "again\n");
  });
});

test("the client closes an idle connection itself", async () => {
  // The node would wait a minute: only the client's 50 ms can close it.
  const n = await node("node-spare-idle", {});
  const pools: PooledConnector[] = [];
  try {
    const created = await Sandbox.create({ remote: { url: n.running.url, token: n.token } });
    const pool = webSocketConnector(
      { url: opUrl(n.running, created.id), token: n.token },
      created.id,
      { idleMs: 50 },
    );
    pools.push(pool);
    const id = local(created.id);
    await new RemoteSandbox(created.id, pool).exec(["true"]);
    await waitUntil("the client closes it", () => n.host.closed.get(id) === 1, 5000);
    assert.equal(n.host.accepted.get(id), 1);
  } finally {
    for (const p of pools) p.close();
    await n.running.close();
    await n.host.close();
  }
});

describe("spares and the node's limits", () => {
  test("spares only while half the slots are free, at most 4 waiting per sandbox", async () => {
    const n = await node("node-spare-limits", { maxOperations: 8 });
    const held: WebSocket[] = [];
    try {
      const sb = await Sandbox.create({ remote: { url: n.running.url, token: n.token } });
      const url = opUrl(n.running, sb.id);
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push(await spareHandshake(url, n.token, held));
      assert.deepEqual(statuses, [101, 101, 101, 101, 503]);
      // 4 of 8 slots taken: no more spares, but operations still run.
      const other = await Sandbox.create({ remote: { url: n.running.url, token: n.token } });
      assert.equal(await spareHandshake(opUrl(n.running, other.id), n.token, held), 503);
      const asked: number[] = [];
      for (const ws of held) ws.on("message", (data: Buffer) => asked.push(data[0] ?? 0));
      const cats = [sb.spawn("cat"), other.spawn("cat"), sb.spawn("cat"), other.spawn("cat")];
      await Promise.all(cats.map((p) => p.pid));
      // 8 of 8, 4 of them spares waiting: the longest waiting is asked to go (IDLE), and the
      // operation runs.
      assert.equal((await sb.exec(["echo", "room"])).stdout, "room\n");
      assert.deepEqual(asked, [Msg.Idle]);
      for (const ws of held) ws.close();
      // 8 operations running: the next one is refused, idle connections or not.
      for (let i = 0; i < 4; i++) cats.push((i % 2 ? sb : other).spawn("cat"));
      await Promise.all(cats.map((p) => p.pid));
      await assert.rejects(sb.exec(["true"]), ErrCapacity);
      for (const p of cats) p.stdin.end();
      await Promise.all(cats.map((p) => p.wait()));
      await waitUntil(
        "operations run again",
        async () => (await sb.exec(["echo", "x"]).catch(() => undefined))?.stdout === "x\n",
        5000,
      );
    } finally {
      for (const ws of held) ws.terminate();
      await n.running.close();
      await n.host.close();
    }
  });
});

test("a kept connection does not keep a finished program alive", async () => {
  const n = await node("node-spare-exit", {});
  try {
    const sb = await Sandbox.create({ remote: { url: n.running.url, token: n.token } });
    const script = join(dataDir, "one-exec.mts");
    writeFileSync(
      script,
      `import { Sandbox } from ${JSON.stringify(new URL("../../src/index.ts", import.meta.url).pathname)};
const sb = Sandbox.connect(process.env.ID!, { remote: { url: process.env.URL!, token: process.env.TOKEN! } });
await sb.exec(["true"]);
await new Promise((r) => setTimeout(r, 200)); // its connection is kept by now
console.log(\`done at \${Date.now()}\`);
`,
    );
    const child = spawn(process.execPath, ["--import", "tsx", script], {
      env: { ...process.env, ID: sb.id, URL: n.running.url, TOKEN: n.token },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise((resolve) => child.once("exit", resolve));
    const exitedAt = Date.now();
    assert.equal(code, 0);
    // Counted from the program's last statement, not its start (a loaded machine takes many
    // seconds to start tsx): a spare holding the process would keep it 10 s (its idle time).
    const doneAt = Number(/done at (\d+)/.exec(output)?.[1]);
    assert.ok(Number.isFinite(doneAt), `no "done at" line in ${JSON.stringify(output)}`);
    assert.ok(exitedAt - doneAt < 7000, `exited ${exitedAt - doneAt} ms after its last statement`);
  } finally {
    await n.running.close();
    await n.host.close();
  }
});
