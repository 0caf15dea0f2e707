// Files, logs, allow-list, port forwards and events at the wire (reference/matchlock-rpc.md
// §5.6-§5.12, §6) against a fake sandbox.
import assert from "node:assert/strict";
import { appendFileSync } from "node:fs";
import { createServer, connect, type AddressInfo } from "node:net";
import { test } from "node:test";
import { RpcCode } from "../../src/rpc/index.js";
import { b64, created, startSession } from "./rpc-client.js";

test("write_file: mode, the 0644 default, missing parents; read_file round-trips bytes", async () => {
  const h = startSession();
  await created(h);
  const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe, 10, 13]);
  assert.deepEqual(
    (await h.client.call("write_file", { path: "/tmp/a.bin", content: b64(bytes), mode: 0o755 }))
      .result,
    {},
  );
  await h.client.call("write_file", { path: "/tmp/deep/er/b.txt", content: b64("b") });
  const sb = h.fake.created[0];
  assert.equal(sb?.files.get("/tmp/a.bin")?.mode, 0o755);
  assert.equal(sb?.files.get("/tmp/deep/er/b.txt")?.mode, 0o644);
  const r = await h.client.call("read_file", { path: "/tmp/a.bin" });
  assert.deepEqual(Buffer.from(r.result?.content as string, "base64"), bytes);
  const empty = await h.client.call("write_file", { path: "/tmp/empty", content: "" });
  assert.deepEqual(empty.result, {});
  assert.equal((await h.client.call("read_file", { path: "/tmp/empty" })).result?.content, "");
});

test("file errors: -32602 for bad or unpadded base64, -32002 for failed operations", async () => {
  const h = startSession();
  await created(h);
  for (const content of ["YWJj=", "YWI", "YW Jj", "-_-_", "YWJj!"]) {
    const r = await h.client.call("write_file", { path: "/tmp/x", content });
    assert.deepEqual(
      r.error,
      { code: RpcCode.InvalidParams, message: "invalid base64 content" },
      content,
    );
  }
  const missing = await h.client.call("read_file", { path: "/tmp/none" });
  assert.equal(missing.error?.code, RpcCode.FileFailed);
  assert.match(missing.error?.message ?? "", /no such file/);
  assert.equal(
    (await h.client.call("list_files", { path: "/nope" })).error?.code,
    RpcCode.FileFailed,
  );
  await h.client.call("write_file", {
    path: "/tmp/huge",
    content: b64(Buffer.alloc(16 * 1024 * 1024 + 1)),
  });
  const huge = await h.client.call("read_file", { path: "/tmp/huge" });
  assert.deepEqual(huge.error, {
    code: RpcCode.FileFailed,
    message: "read_file exceeds 16777216 bytes: /tmp/huge",
  });
});

test("list_files: sorted entries with Go FileMode bits, is_dir, mod_time; [] for an empty dir", async () => {
  const h = startSession();
  await created(h);
  await h.client.call("write_file", { path: "/tmp/d/z.txt", content: b64("12345"), mode: 0o644 });
  await h.client.call("write_file", { path: "/tmp/d/a.sh", content: b64("x"), mode: 0o755 });
  await h.client.call("write_file", { path: "/tmp/d/sub/keep", content: b64("") });
  const r = await h.client.call("list_files", { path: "/tmp/d" });
  assert.deepEqual(r.result?.files, [
    { name: "a.sh", size: 1, mode: 0o755, mod_time: "1970-01-01T00:00:00.000Z", is_dir: false },
    {
      name: "sub",
      size: 4096,
      mode: 2 ** 31 + 0o755,
      mod_time: "1970-01-01T00:00:00.000Z",
      is_dir: true,
    },
    { name: "z.txt", size: 5, mode: 420, mod_time: "1970-01-01T00:00:00.000Z", is_dir: false },
  ]);
  await h.fake.created[0]?.mkdir("/tmp/empty");
  assert.deepEqual((await h.client.call("list_files", { path: "/tmp/empty" })).result, {
    files: [],
  });
});

test("log returns the VM log, also after close; log_stream streams appends until cancelled", async () => {
  const h = startSession();
  await created(h);
  const log = await h.client.call("log");
  assert.equal(Buffer.from(log.result?.content as string, "base64").toString(), "console line 1\n");
  const path = `${h.fake.logDir}/vm-fake0001.log`;
  const id = h.client.request("log_stream");
  await h.client.waitFor(() => h.client.data(id, "log_stream.data") === "console line 1\n");
  appendFileSync(path, "appended\n");
  await h.client.waitFor(() => h.client.data(id, "log_stream.data").endsWith("appended\n"));
  await h.client.call("cancel", { id });
  assert.deepEqual((await h.client.response(id)).error, {
    code: RpcCode.Cancelled,
    message: "context canceled",
  });
  await h.client.call("close", { timeout_seconds: 1 });
  const after = await h.client.call("log");
  assert.equal(
    Buffer.from(after.result?.content as string, "base64").toString(),
    "console line 1\nappended\n",
  );
});

test("allow_list: result shapes with null for empty lists; hosts required; open mode is -32000", async () => {
  const h = startSession();
  await created(h);
  assert.deepEqual((await h.client.call("allow_list_add", { hosts: [] })).error, {
    code: RpcCode.InvalidParams,
    message: "hosts is required",
  });
  assert.deepEqual(
    (await h.client.call("allow_list_add", { hosts: [" a.com ", "b.com", "a.com", ""] })).result,
    {
      added: ["a.com", "b.com"],
      allowed_hosts: ["a.com", "b.com"],
    },
  );
  assert.deepEqual((await h.client.call("allow_list_delete", { hosts: ["zzz"] })).result, {
    removed: null,
    allowed_hosts: ["a.com", "b.com"],
  });
  assert.deepEqual(
    (await h.client.call("allow_list_delete", { hosts: ["a.com", "b.com"] })).result,
    {
      removed: ["a.com", "b.com"],
      allowed_hosts: null,
    },
  );
  const sb = h.fake.created[0];
  if (sb) sb.allowlist = { intercepting: false, hosts: [], emptyDeniesAll: false };
  assert.deepEqual((await h.client.call("allow_list_add", { hosts: ["a.com"] })).error, {
    code: RpcCode.VmFailed,
    message: "allow-list updates unavailable: sandbox was started without network interception",
  });
});

async function echoServer(): Promise<{ port: number; close(): void }> {
  const server = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

function roundTrip(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => s.end(text));
    let got = "";
    s.on("data", (d) => (got += d));
    s.on("end", () => resolve(got));
    s.on("error", reject);
  });
}

test("port_forward: real bound ports, bytes both ways, each call replaces the last; -32602 when empty", async () => {
  const h = startSession();
  await created(h);
  const echo = await echoServer();
  try {
    assert.deepEqual((await h.client.call("port_forward", { forwards: [] })).error, {
      code: RpcCode.InvalidParams,
      message: "forwards is required",
    });
    const first = await h.client.call("port_forward", {
      forwards: [{ local_port: 0, remote_port: echo.port }],
      addresses: ["127.0.0.1"],
    });
    const [binding] = first.result?.bindings as Array<{
      address: string;
      local_port: number;
      remote_port: number;
    }>;
    assert.equal(binding?.address, "127.0.0.1");
    assert.ok((binding?.local_port ?? 0) > 0);
    assert.equal(binding?.remote_port, echo.port);
    assert.equal(await roundTrip(binding?.local_port ?? 0, "ping"), "ping");
    const second = await h.client.call("port_forward", {
      forwards: [{ local_port: 0, remote_port: echo.port }],
    });
    const [next] = second.result?.bindings as Array<{ local_port: number }>;
    assert.equal(await roundTrip(next?.local_port ?? 0, "pong"), "pong");
    await assert.rejects(roundTrip(binding?.local_port ?? 0, "gone"));
    const dup = await h.client.call("port_forward", {
      forwards: [
        { local_port: next?.local_port, remote_port: 1 },
        { local_port: next?.local_port, remote_port: 2 },
      ],
    });
    assert.equal(dup.error?.code, RpcCode.VmFailed);
    assert.match(dup.error?.message ?? "", /duplicate listen address/);
    await h.client.call("close", { timeout_seconds: 1 });
    await assert.rejects(roundTrip(next?.local_port ?? 0, "closed"));
  } finally {
    echo.close();
  }
});

test("event notifications: file events only when vfs.interception asks; network events always, with attribution", async () => {
  const vfs = { workspace: "/workspace", mounts: { "/workspace": { type: "memory" } } };
  for (const interception of [
    undefined,
    { emit_events: true },
    { rules: [{ action: "block", ops: ["remove"], path: "/workspace/keep/*" }] },
  ]) {
    const h = startSession();
    await created(h, { vfs: { ...vfs, ...(interception ? { interception } : {}) } });
    await h.fake.created[0]?.mkdir("/workspace");
    await h.client.call("write_file", {
      path: "/workspace/a.txt",
      content: b64("hello"),
      mode: 0o600,
    });
    h.fake.created[0]?.emit({
      type: "network",
      timestamp: new Date(1_700_000_000_500),
      network: {
        method: "GET",
        url: "https://x.test/",
        scheme: "https",
        host: "x.test",
        port: 443,
        status: 403,
        bytesIn: 0,
        bytesOut: 0,
        durationMs: 3,
        requestId: 1,
        blocked: true,
        reason: "not on the list",
        code: "host_not_allowed",
        attribution: { execId: 2, pid: 40, command: ["curl", "x.test"] },
      },
    });
    const net = await h.client.waitFor((m) => m.method === "event" && m.params?.type === "network");
    assert.deepEqual(net.params, {
      type: "network",
      timestamp: 1_700_000_000,
      network: {
        method: "GET",
        url: "https://x.test/",
        host: "x.test",
        status_code: 403,
        request_bytes: 0,
        response_bytes: 0,
        duration_ms: 3,
        blocked: true,
        block_reason: "host not in allowlist",
        attribution: { exec_id: 2, pid: 40, command: ["curl", "x.test"] },
      },
    });
    const files = h.client.messages.filter(
      (m) => m.method === "event" && m.params?.type === "file",
    );
    if (interception === undefined) assert.deepEqual(files, []);
    else {
      assert.equal(files.length, 1);
      const f = files[0]?.params as { timestamp: number; file: object };
      assert.ok(f.timestamp > 1_700_000_000_000);
      assert.deepEqual(f.file, { op: "write", path: "/workspace/a.txt", size: 5, mode: 0o600 });
    }
  }
});
