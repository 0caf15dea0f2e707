// The exec family at the wire (reference/matchlock-rpc.md §5.2-§5.5, §5.13, §5.15) against a
// fake sandbox: result keys, notifications and their order, stdin in both client styles,
// the terminal, cancel.
import assert from "node:assert/strict";
import { test } from "node:test";
import { RpcCode } from "../../src/rpc/index.js";
import { b64, created, startSession } from "./rpc-client.js";
import { fakeFactory } from "./rpc-fake-sandbox.js";

test("exec: exit_code, stdout, stderr (base64, present even when empty), duration_ms", async () => {
  const h = startSession();
  await created(h);
  const r = await h.client.call("exec", { command: "echo out; err oops; exit 3" });
  assert.deepEqual(Object.keys(r.result ?? {}).sort(), [
    "duration_ms",
    "exit_code",
    "stderr",
    "stdout",
  ]);
  assert.equal(r.result?.exit_code, 3);
  assert.equal(r.result?.stdout, b64("out\n"));
  assert.equal(r.result?.stderr, b64("oops\n"));
  const quiet = await h.client.call("exec", { command: "exit 0" });
  assert.equal(quiet.result?.stdout, "");
  assert.equal(quiet.result?.stderr, "");
  // Every command runs through `/bin/sh -c` in the guest: the string goes to spawn as is.
  assert.equal(h.fake.created[0]?.spawned[0]?.command, "echo out; err oops; exit 3");
});

test("exec_stream: notifications carry params.id and come before the result", async () => {
  const h = startSession();
  await created(h);
  const id = h.client.request("exec_stream", {
    command: "echo one; sleep 20; err two; echo three",
  });
  const r = await h.client.response(id);
  assert.deepEqual(r.result && Object.keys(r.result).sort(), ["duration_ms", "exit_code"]);
  const mine = h.client.messages.filter((m) => m.params?.id === id || m.id === id);
  assert.equal(mine.at(-1)?.id, id);
  assert.equal(h.client.data(id, "exec_stream.stdout"), "one\nthree\n");
  assert.equal(h.client.data(id, "exec_stream.stderr"), "two\n");
  for (const n of h.client.notes(id)) {
    assert.equal(n.jsonrpc, "2.0");
    assert.equal("id" in n, false);
    assert.deepEqual(Object.keys(n.params ?? {}).sort(), ["data", "id"]);
  }
});

test("exec_pipe: ready first; stdin with and without a top-level id; EOF; stderr apart; never answered", async () => {
  const h = startSession();
  await created(h);
  const id = h.client.request("exec_pipe", { command: "cat; err done" });
  await h.client.waitFor((m) => m.method === "exec_pipe.ready" && m.params?.id === id);
  assert.equal(
    h.client.messages.findIndex((m) => m.params?.id === id),
    h.client.messages.findIndex((m) => m.method === "exec_pipe.ready"),
  );
  const before = h.client.messages.length;
  // TypeScript/Python style: a fresh top-level id on every input message.
  h.client.send({
    jsonrpc: "2.0",
    method: "exec_pipe.stdin",
    id: 500,
    params: { id, data: b64("ts-style\n") },
  });
  // Go style: no id at all.
  h.client.send({
    jsonrpc: "2.0",
    method: "exec_pipe.stdin",
    params: { id, data: b64("go-style\n") },
  });
  // Unroutable or broken input is dropped silently.
  h.client.send({
    jsonrpc: "2.0",
    method: "exec_pipe.stdin",
    params: { id: 12345, data: b64("lost") },
  });
  h.client.send({ jsonrpc: "2.0", method: "exec_pipe.stdin", params: { id, data: "not base64!" } });
  h.client.send({
    jsonrpc: "2.0",
    method: "exec_tty.stdin",
    params: { id, data: b64("wrong kind") },
  });
  h.client.send({ jsonrpc: "2.0", method: "exec_pipe.stdin_eof", id: 501, params: { id } });
  const r = await h.client.response(id);
  assert.equal(r.result?.exit_code, 0);
  assert.equal(h.client.data(id, "exec_pipe.stdout"), "ts-style\ngo-style\n");
  assert.equal(h.client.data(id, "exec_pipe.stderr"), "done\n");
  // Nothing answered the input messages (501 and 500 included).
  const answered = h.client.messages
    .slice(before)
    .filter((m) => m.method === undefined && m.id !== id);
  assert.deepEqual(answered, []);
});

test("exec_tty: ready, merged output, default 24x80 or the given size, resize, stdin", async () => {
  const h = startSession();
  await created(h);
  const plain = h.client.request("exec_tty", { command: "tty" });
  await h.client.waitFor((m) => m.method === "exec_tty.ready" && m.params?.id === plain);
  h.client.send({
    jsonrpc: "2.0",
    method: "exec_tty.resize",
    params: { id: plain, rows: 50, cols: 132 },
  });
  h.client.send({
    jsonrpc: "2.0",
    method: "exec_tty.resize",
    id: 77,
    params: { id: plain, rows: 0, cols: 10 },
  });
  h.client.send({
    jsonrpc: "2.0",
    method: "exec_tty.stdin",
    params: { id: plain, data: b64("typed") },
  });
  await h.client.waitFor(() => h.client.data(plain, "exec_tty.stdout").includes("typed"));
  h.client.send({ jsonrpc: "2.0", method: "exec_tty.stdin_eof", params: { id: plain } });
  const r = await h.client.response(plain);
  assert.equal(r.result?.exit_code, 0);
  assert.equal(typeof r.result?.duration_ms, "number");
  assert.equal(h.client.data(plain, "exec_tty.stdout"), "24 80\n50x132\ntyped");
  assert.equal(h.client.notes(plain, "exec_tty.stderr").length, 0);
  const sized = h.client.request("exec_tty", { command: "tty", rows: 40, cols: 100 });
  await h.client.waitFor((m) => m.method === "exec_tty.ready" && m.params?.id === sized);
  h.client.send({ jsonrpc: "2.0", method: "exec_tty.stdin_eof", params: { id: sized } });
  await h.client.response(sized);
  assert.equal(h.client.data(sized, "exec_tty.stdout"), "40 100\n");
  assert.deepEqual(h.fake.created[0]?.spawned.at(-1)?.options.tty, { rows: 40, cols: 100 });
});

test("cancel: {cancelled:true} first, then the target answers -32003; unknown ids are false", async () => {
  const h = startSession();
  await created(h);
  for (const method of ["exec", "exec_stream", "exec_pipe", "exec_tty"]) {
    const id = h.client.request(method, { command: "hang" });
    if (method === "exec_pipe" || method === "exec_tty")
      await h.client.waitFor((m) => m.method === `${method}.ready` && m.params?.id === id);
    else await new Promise((r) => setTimeout(r, 20));
    const c = h.client.request("cancel", { id });
    const target = await h.client.response(id);
    assert.deepEqual(
      target.error,
      { code: RpcCode.Cancelled, message: "context canceled" },
      method,
    );
    const ids = h.client.messages.filter((m) => m.id === c || m.id === id).map((m) => m.id);
    assert.deepEqual(ids, [c, id], method);
    assert.deepEqual((await h.client.response(c)).result, { cancelled: true });
  }
  assert.deepEqual((await h.client.call("cancel", { id: 9999 })).result, { cancelled: false });
  assert.deepEqual((await h.client.call("cancel")).result, { cancelled: false });
  assert.equal((await h.client.call("cancel", { id: "x" })).error?.code, RpcCode.InvalidParams);
});

test("working dir: working_dir, else the image WORKDIR, else vfs.workspace; user is passed on", async () => {
  const vfs = { workspace: "/workspace", mounts: { "/workspace": { type: "memory" } } };
  const h = startSession();
  await created(h, { vfs });
  const cwd = async (params: object) =>
    Buffer.from(
      (await h.client.call("exec", { command: "cwd", ...params })).result?.stdout as string,
      "base64",
    ).toString();
  assert.equal(await cwd({}), "/workspace\n");
  assert.equal(await cwd({ working_dir: "/srv" }), "/srv\n");
  const who = await h.client.call("exec", { command: "user", user: "1000" });
  assert.equal(Buffer.from(who.result?.stdout as string, "base64").toString(), "1000\n");
  const withWorkdir = startSession({ fake: fakeFactory({ workdir: "/app" }) });
  await created(withWorkdir, { vfs });
  const r = await withWorkdir.client.call("exec", { command: "cwd" });
  // The image's WORKDIR applies (the sandbox picks it: no cwd is passed).
  assert.equal(Buffer.from(r.result?.stdout as string, "base64").toString(), "-\n");
});

test("a command that cannot start is -32001 with the reason", async () => {
  const h = startSession();
  await created(h);
  const r = await h.client.call("exec", { command: "fail no such user" });
  assert.equal(r.error?.code, RpcCode.ExecFailed);
  assert.match(r.error?.message ?? "", /no such user/);
});
