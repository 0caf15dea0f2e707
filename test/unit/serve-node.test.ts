// `wheellock serve` with no VM: the real node (routes, auth, WebSocket data plane, relay to a
// protocol server on a unix socket) in front of fake sandboxes, driven through the SDK.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { connect } from "node:net";
import { join } from "node:path";
import { WebSocket } from "ws";
import {
  ErrAuth,
  ErrCapacity,
  ErrInvalidConfig,
  ErrVMNotFound,
  ErrVMNotRunning,
  Sandbox,
  type NodeSandbox,
} from "../../src/index.js";
import {
  inspectRemote,
  listRemote,
  readRemoteLog,
  removeRemote,
  resolveRemote,
  stopRemote,
} from "../../src/sdk/index.js";
import { startNode } from "../../src/serve/index.js";
import { FakeHost } from "../helpers/fake-host.js";

const dataDir = mkdtempSync(join(tmpdir(), "wheellock-serve-unit-"));
process.env.WHEELLOCK_DATA_DIR = dataDir;
process.on("exit", () => rmSync(dataDir, { recursive: true, force: true }));

async function node(
  nodeId: string,
  extra: {
    maxSandboxes?: number;
    maxOperations?: number;
    maxOperationsPerSandbox?: number;
    audit?: (line: string) => void;
  } = {},
) {
  const host = new FakeHost(dataDir, extra.maxSandboxes ?? 8);
  const running = await startNode(
    {
      listen: { host: "127.0.0.1", port: 0 },
      version: "test",
      nodeId,
      tokenFile: join(dataDir, `${nodeId}.token`),
      maxSandboxes: extra.maxSandboxes ?? 8,
      maxOperations: extra.maxOperations ?? 64,
      ...(extra.maxOperationsPerSandbox !== undefined
        ? { maxOperationsPerSandbox: extra.maxOperationsPerSandbox }
        : {}),
      audit: extra.audit ?? (() => undefined),
    },
    host,
  );
  return { host, node: running, token: readFileSync(running.tokenPath, "utf8").trim() };
}

async function get(url: string, token?: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return { status: res.status, body: await res.text() };
}

/** Opens the operation WebSocket by hand; resolves with the handshake's HTTP status. */
function handshake(url: string, token?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    ws.once("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once("open", () => {
      resolve(101);
      ws.close();
    });
    ws.once("error", reject);
  });
}

function opUrl(base: string, id: string): string {
  return `${base.replace(/^http/, "ws")}/v1/sandboxes/${encodeURIComponent(id)}/operation`;
}

describe("serve: one node", () => {
  let a: Awaited<ReturnType<typeof node>>;
  let sb: NodeSandbox;
  let other: NodeSandbox;
  before(async () => {
    a = await node("node-a");
    sb = await Sandbox.create({ remote: { url: a.node.url, token: a.token } });
    other = await Sandbox.create({ remote: { url: a.node.url, token: a.token } });
  });
  after(async () => {
    await a.node.close();
    await a.host.close();
  });

  test("healthz needs no token and names the node; info needs the operator token", async () => {
    const health = await get(`${a.node.url}/healthz`);
    assert.deepEqual(JSON.parse(health.body), { ok: true, node: "node-a" });
    const none = await get(`${a.node.url}/v1/info`);
    assert.equal(none.status, 401);
    assert.equal(none.body.trim().split("\n").length, 1);
    assert.equal(JSON.parse(none.body).error.code, "ErrAuth");
    assert.equal((await get(`${a.node.url}/v1/info`, "wrong-token-wrong-token")).status, 403);
    assert.equal((await get(`${a.node.url}/v1/info`, sb.token)).status, 403);
    const info = JSON.parse((await get(`${a.node.url}/v1/info`, a.token)).body);
    assert.equal(info.node, "node-a");
    assert.equal(info.sandboxes.running, 2);
  });

  test("create returns an id that names the node, and its own token; exec works", async () => {
    assert.match(sb.id, /^vm-[0-9a-f]{8}@node-a$/);
    assert.ok(sb.token && sb.token !== a.token);
    assert.equal((await sb.exec(["echo", "hi", "there"])).stdout, "hi there\n");
    assert.equal((await sb.exec(["exit", "3"])).exitCode, 3);
    assert.equal((await sb.exec("cat", { stdin: "round trip" })).stdout, "round trip");
  });

  test("one sandbox's view carries its usage, asked of it (inspect --remote prints it)", async () => {
    const remote = { urls: [a.node.url], token: a.token, ca: undefined };
    const before = await inspectRemote(sb.id, remote);
    await sb.exec(["echo", "counted"]);
    const after = await inspectRemote(sb.id, remote);
    assert.equal(after.usage?.execs.count, (before.usage?.execs.count ?? NaN) + 1);
    assert.equal(after.usage?.execs.count, (await sb.usage()).execs.count);
    // The list stays one read of the node's records: no sandbox is asked.
    const listed = await get(`${a.node.url}/v1/sandboxes`, a.token);
    assert.ok(!listed.body.includes('"usage"'));
  });

  test("options that are code are refused with one line naming them, before any call", async () => {
    const remote = { url: "http://127.0.0.1:9", token: a.token };
    await assert.rejects(
      Sandbox.create({ networkHooks: [{ hosts: ["x.example"], hook: () => ({}) }], remote }),
      (err: Error) => {
        assert.ok(err instanceof ErrInvalidConfig);
        assert.match(err.message, /options\.networkHooks\.0\.hook: callbacks cannot be passed/);
        assert.doesNotMatch(err.message, /\n/);
        return true;
      },
    );
    class Provider {}
    await assert.rejects(
      Sandbox.create({
        mounts: { "/data": { type: "provider", provider: new Provider() } },
        remote,
      } as never),
      /options\.mounts\.\/data\.provider: objects such as custom providers cannot be passed/,
    );
  });

  test("a sandbox's token opens that sandbox and no other", async () => {
    const own = Sandbox.connect(sb.id, { remote: { url: a.node.url, token: sb.token as string } });
    assert.equal((await own.exec(["echo", "mine"])).stdout, "mine\n");
    const cross = Sandbox.connect(other.id, {
      remote: { url: a.node.url, token: sb.token as string },
    });
    await assert.rejects(cross.exec(["echo", "theirs"]), ErrAuth);
    const wrong = Sandbox.connect(sb.id, { remote: { url: a.node.url, token: "x".repeat(43) } });
    await assert.rejects(wrong.exec(["true"]), ErrAuth);
    assert.equal(await handshake(opUrl(a.node.url, sb.id)), 401);
    assert.equal(await handshake(opUrl(a.node.url, other.id), sb.token), 403);
    // Another sandbox's REST view is closed to it too.
    assert.equal((await get(`${a.node.url}/v1/sandboxes/${other.id}`, sb.token)).status, 403);
    assert.equal((await get(`${a.node.url}/v1/sandboxes/${sb.id}`, sb.token)).status, 200);
  });

  test("malformed ids: refused before anything is looked up", async () => {
    assert.throws(
      () => Sandbox.connect("vm-nothex!@node-a", { remote: { url: a.node.url, token: a.token } }),
      ErrInvalidConfig,
    );
    for (const bad of ["vm-12345678@Bad_Node", "vm-1234567", "%00"]) {
      assert.equal(await handshake(opUrl(a.node.url, bad), a.token), 400, bad);
      assert.equal(await handshake(opUrl(a.node.url, bad), sb.token), 403, bad);
    }
    assert.equal((await get(`${a.node.url}/v1/sandboxes/vm-zz`, a.token)).status, 400);
    // However long: a malformed id, not an unknown endpoint.
    const long = `vm-00000000@${"n".repeat(200)}`;
    assert.equal((await get(`${a.node.url}/v1/sandboxes/${long}`, a.token)).status, 400);
    assert.equal(await handshake(opUrl(a.node.url, long), a.token), 400);
    // A well-formed id of another node, or of nothing: 404 for the operator only.
    assert.equal(await handshake(opUrl(a.node.url, "vm-00000000@node-a"), a.token), 404);
    assert.equal(await handshake(opUrl(a.node.url, "vm-00000000@node-a"), sb.token), 403);
  });

  test("what Node's HTTP parser refuses is answered as one JSON line too", async () => {
    const url = new URL(a.node.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () =>
        socket.write("NOT A REQUEST LINE\r\n\r\n"),
      );
      let text = "";
      socket.on("data", (d: Buffer) => (text += d.toString()));
      socket.on("end", () => resolve(text));
      socket.on("error", reject);
    });
    assert.match(answer, /^HTTP\/1\.1 400 /);
    const body = answer.slice(answer.indexOf("\r\n\r\n") + 4);
    assert.equal(
      (JSON.parse(body) as { error: { code: string } }).error.code,
      "ErrInvalidConfig",
      answer,
    );
  });

  test("an oversize frame closes the operation (1009) and nothing else", async () => {
    const ws = new WebSocket(opUrl(a.node.url, sb.id), {
      headers: { authorization: `Bearer ${sb.token}` },
    });
    await new Promise((resolve) => ws.once("open", resolve));
    const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
    ws.send(Buffer.alloc(2 * 1024 * 1024));
    assert.equal(await closed, 1009);
    assert.equal((await sb.exec(["echo", "still"])).stdout, "still\n");
  });

  test("an oversize REST body is refused with 413", async () => {
    const res = await fetch(`${a.node.url}/v1/sandboxes`, {
      method: "POST",
      headers: { authorization: `Bearer ${a.token}`, "content-type": "application/json" },
      body: JSON.stringify({ options: { env: { BIG: "x".repeat(2 * 1024 * 1024) } } }),
    });
    assert.equal(res.status, 413);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, "ErrTooLarge");
  });

  test("configure needs the operator token; applied with it", async () => {
    const own = Sandbox.connect(sb.id, { remote: { url: a.node.url, token: sb.token as string } });
    await assert.rejects(own.configure({ env: { WHO: "me" } }), ErrAuth);
    await assert.rejects(sb.configure({ policyScript: "relative/script.ts" }), /must be absolute/);
    await sb.configure({ env: { WHO: "operator" } });
    assert.equal((await sb.exec(["printenv", "WHO"])).stdout, "operator\n");
  });

  test("a client that stops reading stops the producer: node memory stays bounded", async () => {
    const fake = a.host.sandbox(sb.id);
    fake.produced = 0;
    const proc = sb.spawn("yes");
    proc.stdin.end();
    proc.stdout.pause();
    // Wait until the producer stalls (slowly on a loaded machine), then check where it stopped.
    let stalled = -1;
    for (let waited = 0; waited < 15_000 && fake.produced !== stalled; waited += 500) {
      stalled = fake.produced;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(fake.produced, stalled, "the producer kept going");
    // Socket buffers and stream high-water marks on both hops, no more.
    assert.ok(stalled < 8 * 1024 * 1024, `produced ${stalled} bytes while nobody read`);
    let read = 0;
    proc.stdout.on("data", (c: Buffer) => (read += c.length));
    proc.stdout.resume();
    while (read < 32 * 1024 * 1024) await new Promise((r) => setTimeout(r, 20));
    proc.kill("SIGTERM");
    await proc.wait().catch(() => undefined);
  });

  test("a client that disconnects mid-stream ends only its own operation", async () => {
    const proc = sb.spawn("yes");
    proc.stdin.end();
    await new Promise((r) => proc.stdout.once("data", r));
    proc.abandon();
    await assert.rejects(proc.wait());
    assert.equal((await sb.exec(["echo", "after"])).stdout, "after\n");
  });

  test("the log is read through both ring segments with the sandbox's own token", async () => {
    const bare = sb.id.split("@")[0] as string;
    writeFileSync(`${a.host.logPath(bare)}.1`, "older\n");
    writeFileSync(a.host.logPath(bare), "current\n");
    const remote = { urls: [a.node.url], token: sb.token as string, ca: undefined };
    let cursor: string | undefined;
    let text = "";
    for (let slice = await readRemoteLog(sb.id, remote); slice.data.length > 0;) {
      text += slice.data.toString();
      cursor = slice.cursor;
      slice = await readRemoteLog(sb.id, remote, cursor);
    }
    assert.equal(text, "older\ncurrent\n");
    appendFileSync(a.host.logPath(bare), "more\n");
    assert.equal((await readRemoteLog(sb.id, remote, cursor)).data.toString(), "more\n");
    const bad = await get(`${a.node.url}/v1/sandboxes/${sb.id}/log?cursor=x`, sb.token);
    assert.equal(bad.status, 400);
    const otherLog = await get(`${a.node.url}/v1/sandboxes/${other.id}/log`, sb.token);
    assert.equal(otherLog.status, 403);
  });

  test("close stops the sandbox through the node and removes it", async () => {
    const gone = await Sandbox.create({ remote: { url: a.node.url, token: a.token } });
    await gone.close();
    await gone.close();
    assert.equal((await get(`${a.node.url}/v1/sandboxes/${gone.id}`, a.token)).status, 404);
    await assert.rejects(gone.exec(["true"]), ErrVMNotRunning);
  });
});

test("kill through the node stops the sandbox and keeps it, as locally; rm then removes it", async () => {
  const audited: string[] = [];
  const n = await node("node-kill", { audit: (line) => void audited.push(line) });
  const remote = resolveRemote({ url: n.node.url, token: n.token })!;
  try {
    const sb = await Sandbox.create({ remote: { url: n.node.url, token: n.token } });
    // A sandbox's own token opens no lifecycle call.
    const byTenant = await fetch(`${n.node.url}/v1/sandboxes/${sb.id}/stop`, {
      method: "POST",
      headers: { authorization: `Bearer ${sb.token}` },
    });
    assert.equal(byTenant.status, 403);
    await stopRemote(sb.id, remote);
    const view = await inspectRemote(sb.id, remote);
    assert.equal(view.status, "stopped");
    assert.deepEqual(
      (await listRemote(remote)).map((v) => [v.id, v.status]),
      [[sb.id, "stopped"]],
    );
    await assert.rejects(stopRemote(sb.id, remote), ErrVMNotRunning);
    await assert.rejects(sb.exec(["true"]), ErrVMNotRunning);
    await removeRemote(sb.id, remote);
    await assert.rejects(inspectRemote(sb.id, remote), ErrVMNotFound);
    // The node's audit trail: each change once, by whom.
    assert.deepEqual(audited, [
      `created ${sb.id} (REST, operator)`,
      `stopped ${sb.id} (REST, operator)`,
      `removed ${sb.id} (REST, operator)`,
    ]);
  } finally {
    await n.node.close();
    await n.host.close();
  }
});

describe("serve: limits", () => {
  test("operations beyond --max-operations are refused with ErrCapacity", async () => {
    const n = await node("node-limits", { maxOperations: 2 });
    try {
      const sb = await Sandbox.create({ remote: { url: n.node.url, token: n.token } });
      const held = [sb.spawn("cat"), sb.spawn("cat")];
      await Promise.all(held.map((p) => p.pid));
      await assert.rejects(sb.exec(["echo", "x"]), ErrCapacity);
      for (const p of held) p.stdin.end();
      await Promise.all(held.map((p) => p.wait()));
      await new Promise((r) => setTimeout(r, 50));
      assert.equal((await sb.exec(["echo", "x"])).stdout, "x\n");
    } finally {
      await n.node.close();
      await n.host.close();
    }
  });
});

test("one sandbox's operations cannot take every slot of the node from another's", async () => {
  const n = await node("node-share", { maxOperations: 6, maxOperationsPerSandbox: 2 });
  try {
    const remote = { url: n.node.url, token: n.token };
    const greedy = await Sandbox.create({ remote });
    const other = await Sandbox.create({ remote });
    const held = [greedy.spawn("cat"), greedy.spawn("cat")];
    await Promise.all(held.map((p) => p.pid));
    await assert.rejects(greedy.exec(["echo", "x"]), /runs its limit of 2 operations/);
    assert.equal((await other.exec(["echo", "y"])).stdout, "y\n");
    for (const p of held) p.stdin.end();
    await Promise.all(held.map((p) => p.wait()));
  } finally {
    await n.node.close();
    await n.host.close();
  }
});

describe("serve: slow calls", () => {
  test("a create that takes longer than the HTTP agent's 5 s idle timeout still succeeds", async () => {
    const n = await node("node-slow");
    n.host.createDelayMs = 6000;
    try {
      const sb = await Sandbox.create({ remote: { url: n.node.url, token: n.token } });
      assert.equal((await sb.exec(["echo", "booted"])).stdout, "booted\n");
    } finally {
      await n.node.close();
      await n.host.close();
    }
  });
});

describe("serve: two nodes", () => {
  test("placement takes the node with room; ids find their node among several", async () => {
    const roomy = await node("node-roomy");
    const full = await node("node-full", { maxSandboxes: 1 });
    try {
      await full.host.create();
      // Both nodes share one operator token file name scheme but not the token: use each.
      const token = roomy.token;
      await full.node.close();
      const fullAgain = await startNode(
        {
          listen: { host: "127.0.0.1", port: 0 },
          version: "test",
          nodeId: "node-full",
          tokenFile: join(dataDir, "node-roomy.token"),
          maxSandboxes: 1,
        },
        full.host,
      );
      try {
        const urls = [roomy.node.url, fullAgain.url];
        for (let i = 0; i < 6; i++) {
          const sb = await Sandbox.create({ remote: { url: urls, token } });
          assert.match(sb.id, /@node-roomy$/);
          const again = Sandbox.connect(sb.id, { remote: { url: [...urls].reverse(), token } });
          assert.equal((await again.exec(["echo", "found"])).stdout, "found\n");
        }
        const onFull = full.host.list()[0]?.id as string;
        const there = Sandbox.connect(`${onFull}@node-full`, { remote: { url: urls, token } });
        assert.equal((await there.exec(["echo", "full"])).stdout, "full\n");
      } finally {
        await fullAgain.close();
      }
    } finally {
      await roomy.node.close();
      await roomy.host.close();
      await full.host.close();
    }
  });
});
