// `wheellock rpc` at the wire (reference/matchlock-rpc.md §2-§4, §14.1 "Framing", "Ids",
// "Before create"): lines, ids, error codes, ASCII-only output, oversized lines.
import assert from "node:assert/strict";
import { test } from "node:test";
import { RpcCode } from "../../src/rpc/index.js";
import { b64, created, startSession } from "./rpc-client.js";

const VM_METHODS = [
  "exec",
  "exec_stream",
  "exec_pipe",
  "exec_tty",
  "write_file",
  "read_file",
  "list_files",
  "log",
  "log_stream",
  "allow_list_add",
  "allow_list_delete",
  "port_forward",
];

test("one object per line; blank lines ignored; bad JSON is -32700 without an id", async () => {
  const { client } = startSession();
  client.write("\n   \n\r\n");
  for (const bad of [
    "garbage",
    "{",
    "[1,2]",
    '"str"',
    "42",
    '{"id":"7","method":"log"}',
    '{"id":-1,"method":"log"}',
    '{"id":1.5,"method":"log"}',
    '{"method":7,"id":3}',
  ])
    client.write(`${bad}\n`);
  const id = client.request("nope", {});
  const missing = await client.response(id);
  assert.deepEqual(missing.error, { code: RpcCode.MethodNotFound, message: "Method not found" });
  const parse = client.messages.filter((m) => m.error?.code === RpcCode.Parse);
  assert.equal(parse.length, 9);
  for (const m of parse) {
    assert.equal("id" in m, false);
    assert.equal(m.error?.message, "Parse error");
  }
  // Every line is one compact JSON object.
  for (const line of client.raw) assert.doesNotMatch(line, /\n/);
  assert.equal(client.messages.length, 10);
});

test("before create every VM method is -32000 VM not created; close is {}", async () => {
  const { client } = startSession();
  for (const method of VM_METHODS) {
    const r = await client.call(method, {
      command: "echo",
      path: "/x",
      hosts: ["a"],
      forwards: [{ local_port: 0, remote_port: 1 }],
    });
    assert.deepEqual(r.error, { code: RpcCode.VmFailed, message: "VM not created" }, method);
    assert.equal(r.result, undefined);
  }
  assert.deepEqual((await client.call("close", { timeout_seconds: 2 })).result, {});
});

test("a request without an id runs and its reply has no id; exec_pipe/tty/log_stream need one", async () => {
  const h = startSession();
  await created(h);
  h.client.send({ jsonrpc: "2.0", method: "exec", params: { command: "echo no-id" } });
  const reply = await h.client.waitFor((m) => m.result?.exit_code !== undefined);
  assert.equal("id" in reply, false);
  assert.equal(Buffer.from(reply.result?.stdout as string, "base64").toString(), "no-id\n");
  for (const method of ["exec_pipe", "exec_tty", "log_stream"]) {
    const from = h.client.messages.length;
    h.client.send({ jsonrpc: "2.0", method, params: { command: "echo" } });
    const r = await h.client.waitFor((m) => m.error?.code === RpcCode.InvalidRequest, 5000, from);
    assert.equal(r.error?.message, `${method} requires request id`);
    assert.equal("id" in r, false);
  }
  // `"id": null` is no id too.
  const from = h.client.messages.length;
  h.client.send({ jsonrpc: "2.0", method: "nope", id: null });
  const r = await h.client.waitFor((m) => m.error?.code === RpcCode.MethodNotFound, 5000, from);
  assert.equal("id" in r, false);
});

test("replies come out of order; several requests are in flight at once", async () => {
  const h = startSession();
  await created(h);
  const slow = h.client.request("exec", { command: "sleep 200; echo slow" });
  const fast = h.client.request("exec", { command: "echo fast" });
  await h.client.response(slow);
  const order = h.client.messages.filter((m) => m.id === slow || m.id === fast).map((m) => m.id);
  assert.deepEqual(order, [fast, slow]);
});

test("output is ASCII-only; non-ASCII in commands and paths round-trips", async () => {
  const h = startSession();
  await created(h);
  const word = "héllo wörld ✓ 😀";
  const e = await h.client.call("exec", { command: `echo ${word}` });
  assert.equal(Buffer.from(e.result?.stdout as string, "base64").toString(), `${word}\n`);
  const path = "/tmp/ünïcødé-✓.txt";
  await h.client.call("write_file", { path, content: b64("x"), mode: 420 });
  const r = await h.client.call("read_file", { path: "/tmp/nope-✓" });
  assert.match(r.error?.message ?? "", /nope-✓/);
  const list = await h.client.call("list_files", { path: "/tmp" });
  assert.deepEqual(
    (list.result?.files as Array<{ name: string }>).map((f) => f.name),
    ["ünïcødé-✓.txt"],
  );
  // The server escaped every code point >= U+0080 (raw lines are pure ASCII).
  for (const line of h.client.raw) assert.match(line, /^[\x20-\x7e]*$/);
  assert.ok(h.client.raw.some((l) => l.includes("\\u00fc")));
  // A request line with raw UTF-8 split across writes is decoded whole.
  const bytes = Buffer.from(
    `${JSON.stringify({ jsonrpc: "2.0", method: "exec", id: 900, params: { command: "echo ✓" } })}\n`,
  );
  const cut = bytes.indexOf(Buffer.from("✓")) + 1;
  h.client.write(bytes.subarray(0, cut));
  await new Promise((r) => setImmediate(r));
  h.client.write(bytes.subarray(cut));
  const split = await h.client.response(900);
  assert.equal(Buffer.from(split.result?.stdout as string, "base64").toString(), "✓\n");
});

test("a line over the limit is one -32600 error (with its id when it can be read) and the session goes on", async () => {
  const h = startSession({ maxLineBytes: 1024 * 1024 });
  await created(h);
  const big = "A".repeat(2 * 1024 * 1024);
  // TypeScript and Python write the id before params; Go writes it last.
  h.client.write(
    `{"jsonrpc":"2.0","method":"write_file","id":41,"params":{"path":"/tmp/a","content":"${big}"}}\n`,
  );
  h.client.write(
    `{"jsonrpc":"2.0","method":"write_file","params":{"path":"/tmp/a","content":"${big}"},"id":42}\n`,
  );
  h.client.write(
    `{"jsonrpc":"2.0","method":"write_file","params":{"path":"/tmp/a","content":"${big}","id":5}}\n`,
  );
  for (const id of [41, 42]) {
    const r = await h.client.response(id);
    assert.equal(r.error?.code, RpcCode.InvalidRequest);
    assert.match(r.error?.message ?? "", /longer than the limit/);
  }
  // A nested "id" is not the request's: that error has no id.
  await h.client.waitFor((m) => m.error?.code === RpcCode.InvalidRequest && !("id" in m));
  // Lines between the limit of the reference (10 MiB) and ours are accepted.
  const ok = await h.client.call("write_file", {
    path: "/tmp/b",
    content: b64(Buffer.alloc(600 * 1024, 1)),
  });
  assert.deepEqual(ok.result, {});
  assert.equal((await h.client.call("exec", { command: "echo still here" })).result?.exit_code, 0);
});

test("a line longer than the reference's 10 MiB is accepted by default", async () => {
  const h = startSession();
  await created(h);
  const data = Buffer.alloc(12 * 1024 * 1024, 7);
  const r = await h.client.call("write_file", { path: "/tmp/big", content: b64(data) }, 30_000);
  assert.deepEqual(r.result, {});
  assert.equal(h.fake.created[0]?.files.get("/tmp/big")?.data.length, data.length);
});

test("params errors are -32602; a missing params object too", async () => {
  const h = startSession();
  await created(h);
  assert.equal((await h.client.call("exec")).error?.code, RpcCode.InvalidParams);
  assert.equal((await h.client.call("exec", [1])).error?.code, RpcCode.InvalidParams);
  const typed = await h.client.call("exec", { command: 7 });
  assert.deepEqual(typed.error, {
    code: RpcCode.InvalidParams,
    message: "command must be a string",
  });
  // null params is an empty object (Go decodes it so).
  assert.equal((await h.client.call("exec", null)).result?.exit_code, 0);
});
