// The network surface of `wheellock serve` under attack, with no VM (fake sandboxes behind the
// real node): a tenant widening its own sandbox's egress, malformed request targets, tokens
// where they could leak (query strings, URLs, error bodies, listings, the node's own output).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ErrAuth,
  ErrInvalidConfig,
  ErrNotFound,
  Sandbox,
  type NodeSandbox,
} from "../../src/index.js";
import { startNode } from "../../src/serve/index.js";
import { FakeHost } from "../helpers/fake-host.js";
import { CLI } from "../helpers/lifecycle.js";

const dataDir = mkdtempSync(join(tmpdir(), "wheellock-serve-attacks-"));
process.env.WHEELLOCK_DATA_DIR = dataDir;
process.on("exit", () => rmSync(dataDir, { recursive: true, force: true }));

/** A raw request (no URL normalisation by the client): status and body. */
function raw(
  base: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, headers }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("serve under attack", () => {
  const warnings: string[] = [];
  const host = new FakeHost(dataDir);
  let url: string;
  let operator: string;
  let close: () => Promise<void>;
  let mine: NodeSandbox;
  let theirs: NodeSandbox;
  before(async () => {
    const node = await startNode(
      {
        listen: { host: "127.0.0.1", port: 0 },
        version: "test",
        nodeId: "node-x",
        tokenFile: join(dataDir, "operator-token"),
        maxSandboxes: 8,
        warn: (m) => warnings.push(m),
      },
      host,
    );
    url = node.url;
    close = node.close;
    operator = readFileSync(node.tokenPath, "utf8").trim();
    mine = await Sandbox.create({ remote: { url, token: operator } });
    theirs = await Sandbox.create({ remote: { url, token: operator } });
  });
  after(async () => {
    await close();
    await host.close();
  });

  test("a sandbox's token cannot widen its own egress; narrowing and reading are fine", async () => {
    const tenant = Sandbox.connect(mine.id, { remote: { url, token: mine.token as string } });
    await assert.rejects(tenant.allowHosts("evil.example"), (err: Error) => {
      assert.ok(err instanceof ErrAuth, String(err));
      assert.match(err.message, /allow-list add needs the node's operator token/);
      return true;
    });
    assert.ok(!(await tenant.allowedHosts()).hosts.includes("evil.example"));
    await tenant.disallowHosts("nothing.example");
    await mine.allowHosts("api.example");
    assert.ok((await tenant.allowedHosts()).hosts.includes("api.example"));
  });

  test("a sandbox's token cannot approve its own held requests; denying one is fine", async () => {
    const tenant = Sandbox.connect(mine.id, { remote: { url, token: mine.token as string } });
    for (const decision of ["once", "sandbox"] as const)
      await assert.rejects(tenant.decideRequest(1, decision), (err: Error) => {
        assert.ok(err instanceof ErrAuth, String(err));
        assert.match(err.message, /decide-request needs the node's operator token/);
        return true;
      });
    // Past the node's check, the (fake) sandbox answers: nothing is waiting.
    await assert.rejects(tenant.decideRequest(1, "deny"), ErrNotFound);
    await assert.rejects(mine.decideRequest(1, "once"), ErrNotFound);
    assert.deepEqual(await tenant.pendingRequests(), []);
  });

  test("malformed request targets and escapes are a 4xx, never a 500", async () => {
    const auth = { authorization: `Bearer ${operator}` };
    for (const path of ["/v1/sandboxes/%E0%A4%A", "/v1/sandboxes/%E0%A4%A/log", "/v1/sandboxes/%"])
      assert.equal((await raw(url, path, auth)).status, 400, path);
    const tenant = { authorization: `Bearer ${mine.token as string}` };
    assert.equal((await raw(url, "/v1/sandboxes/%E0%A4%A", tenant)).status, 403);
    assert.equal((await raw(url, `/v1/sandboxes/..%2F${mine.id}`, auth)).status, 400);
  });

  test("a token in the query string or the URL is never taken, nor echoed", async () => {
    for (const q of ["token", "access_token"]) {
      const res = await raw(url, `/v1/sandboxes?${q}=${operator}`);
      assert.equal(res.status, 401);
      assert.ok(!res.body.includes(operator), res.body);
    }
    const withUser = url.replace("http://", `http://op:${operator}@`);
    assert.throws(
      () => Sandbox.connect(mine.id, { remote: { url: withUser, token: operator } }),
      (err: Error) => {
        assert.ok(err instanceof ErrInvalidConfig);
        assert.ok(!err.message.includes(operator), err.message);
        assert.match(err.message, /\*\*\*@/);
        return true;
      },
    );
  });

  test("no token appears in listings, views, refusals or the node's warnings", async () => {
    const tokens = [operator, mine.token as string, theirs.token as string];
    const bodies = [
      await raw(url, "/v1/sandboxes", { authorization: `Bearer ${operator}` }),
      await raw(url, "/v1/info", { authorization: `Bearer ${operator}` }),
      await raw(url, `/v1/sandboxes/${mine.id}`, { authorization: `Bearer ${mine.token}` }),
      await raw(url, `/v1/sandboxes/${theirs.id}`, { authorization: `Bearer ${mine.token}` }),
      await raw(url, "/v1/info", { authorization: `Bearer ${mine.token}` }),
      await raw(url, "/v1/info", { authorization: `Bearer ${operator}x` }),
      await raw(url, `/nothing/${operator}`, { authorization: `Bearer ${operator}` }),
    ].map((r) => r.body);
    // The path is echoed in a 404 to whoever sent it; everything else names no token.
    for (const [i, body] of bodies.slice(0, -1).entries())
      for (const t of tokens) assert.ok(!body.includes(t), `response ${i}: ${body}`);
    const cross = Sandbox.connect(theirs.id, { remote: { url, token: mine.token as string } });
    const err = await cross.exec(["true"]).catch((e: Error) => e);
    assert.ok(err instanceof ErrAuth);
    for (const t of tokens) assert.ok(!err.message.includes(t), err.message);
    for (const t of tokens) assert.ok(!warnings.join("\n").includes(t), warnings.join("\n"));
  });
});

test("`wheellock serve` prints where its token is, never the token", async () => {
  const dir = mkdtempSync(join(tmpdir(), "wheellock-serve-out-"));
  try {
    const child = spawn(process.execPath, [...CLI, "serve", "--listen", "127.0.0.1:0"], {
      env: { ...process.env, WHEELLOCK_DATA_DIR: dir },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString();
        if (out.includes("\n")) resolve();
      });
      child.once("exit", (code) => reject(new Error(`serve exited ${code}: ${err}`)));
    });
    const ready = JSON.parse(out) as { url: string; tokenFile: string };
    const token = readFileSync(ready.tokenFile, "utf8").trim();
    assert.equal(token.length, 43);
    await raw(ready.url, "/v1/info", { authorization: `Bearer ${token}x` });
    await raw(ready.url, "/v1/sandboxes/vm-00000000", { authorization: `Bearer ${token}` });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
    assert.ok(!`${out}${err}`.includes(token), `${out}${err}`);
    assert.match(err, /operator token: .*operator-token \(new\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
