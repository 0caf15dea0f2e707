// Session lifecycle (reference/matchlock-rpc.md §3, §5.1, §5.14, §9; §14.1 "Lifecycle"):
// close, a second create, EOF, and the improvements (close/create cancel instead of waiting).
import assert from "node:assert/strict";
import { test } from "node:test";
import { RpcCode } from "../../src/rpc/index.js";
import { b64, created, startSession } from "./rpc-client.js";
import { fakeFactory } from "./rpc-fake-sandbox.js";
import { PROMPTLY_MS } from "../helpers/timing.js";

const CANCELLED = { code: RpcCode.Cancelled, message: "context canceled" };

test("close answers {} promptly although a log_stream and a stdin-waiting exec_pipe are open", async () => {
  const h = startSession();
  await created(h);
  const stream = h.client.request("log_stream");
  const pipe = h.client.request("exec_pipe", { command: "cat" });
  await h.client.waitFor((m) => m.method === "exec_pipe.ready");
  const started = Date.now();
  const close = await h.client.call("close", { timeout_seconds: 2 }, PROMPTLY_MS);
  assert.deepEqual(close.result, {});
  assert.ok(Date.now() - started < PROMPTLY_MS);
  assert.deepEqual((await h.client.response(stream)).error, CANCELLED);
  assert.deepEqual((await h.client.response(pipe)).error, CANCELLED);
  assert.deepEqual(h.fake.ends, ["close vm-fake0001"]);
});

test("after close: VM methods are VM not created, log still reads, close again is {}, create works", async () => {
  const h = startSession();
  await created(h);
  await h.client.call("close", { timeout_seconds: 2.0 });
  assert.deepEqual((await h.client.call("exec", { command: "echo" })).error, {
    code: RpcCode.VmFailed,
    message: "VM not created",
  });
  assert.equal(
    Buffer.from((await h.client.call("log")).result?.content as string, "base64").toString(),
    "console line 1\n",
  );
  assert.deepEqual((await h.client.call("close", {})).result, {});
  assert.equal(await created(h), "vm-fake0002");
});

test("close without time stops the VM at once; with time it closes cleanly", async () => {
  const h = startSession();
  await created(h);
  await h.client.call("close", {});
  await created(h);
  await h.client.call("close", { timeout_seconds: 5 });
  assert.deepEqual(h.fake.ends, ["kill vm-fake0001", "close vm-fake0002"]);
});

test("a second create stops the previous VM and cancels what ran on it", async () => {
  const h = startSession();
  await created(h);
  const hang = h.client.request("exec", { command: "hang" });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(await created(h), "vm-fake0002");
  assert.deepEqual((await h.client.response(hang)).error, CANCELLED);
  assert.deepEqual(h.fake.ends, ["close vm-fake0001"]);
  assert.equal(h.fake.created[0]?.closed, true);
});

test("requests pipelined behind create run on the new VM (create is a barrier)", async () => {
  const h = startSession({ fake: fakeFactory(undefined, 100) });
  const c = h.client.request("create", { image: "alpine:latest" });
  const e = h.client.request("exec", { command: "echo after create" });
  const exec = await h.client.response(e);
  assert.equal(exec.result?.stdout, b64("after create\n"));
  const ids = h.client.messages.filter((m) => m.id === c || m.id === e).map((m) => m.id);
  assert.deepEqual(ids, [c, e]);
});

test("stdin EOF without close: in-flight requests answer -32003, the VM is stopped at once, done", async () => {
  const h = startSession();
  await created(h);
  const hang = h.client.request("exec_stream", { command: "echo started; hang" });
  await h.client.waitFor(() => h.client.data(hang, "exec_stream.stdout") === "started\n");
  const started = Date.now();
  h.client.input.end();
  await h.session.done;
  assert.ok(Date.now() - started < PROMPTLY_MS, `ended in ${Date.now() - started} ms`);
  assert.deepEqual((await h.client.response(hang)).error, CANCELLED);
  assert.deepEqual(h.fake.ends, ["kill vm-fake0001"]);
});

test("EOF while the VM boots: the new VM is discarded as soon as it is up (nobody knows its id)", async () => {
  const fake = fakeFactory(undefined, 200);
  const h = startSession({ fake });
  const c = h.client.request("create", { image: "alpine:latest" });
  await new Promise((r) => setTimeout(r, 50));
  h.client.input.end();
  await h.session.done;
  assert.deepEqual((await h.client.response(c)).error, CANCELLED);
  assert.deepEqual(fake.ends, ["discard vm-fake0001"]);
});

test("EOF while a slow create boots: create and the exec behind it each answer -32003 once (review rev19 L4)", async () => {
  const fake = fakeFactory(undefined, 3000);
  const h = startSession({ fake });
  const c = h.client.request("create", { image: "alpine:latest" });
  const e = h.client.request("exec", { command: "echo never" });
  await new Promise((r) => setTimeout(r, 50));
  h.client.input.end();
  await h.session.done;
  const replies = h.client.messages.filter((m) => m.id === c || m.id === e);
  assert.deepEqual(
    replies.map((m) => [m.id, m.error]),
    [
      [c, CANCELLED],
      [e, CANCELLED],
    ],
  );
  // The boot that ends later answers nothing more (exactly one reply per request).
  await new Promise((r) => setTimeout(r, 3200));
  assert.equal(h.client.messages.filter((m) => m.id === c || m.id === e).length, 2);
});

test("launch_entrypoint: ENTRYPOINT+CMD start; an early failure fails create and discards the VM", async () => {
  const ok = startSession({ fake: fakeFactory({ entrypoint: ["sleep"], cmd: ["2000"] }) });
  await created(ok, { launch_entrypoint: true });
  assert.deepEqual(
    ok.fake.created[0]?.spawned.map((s) => s.command),
    [["sleep", "2000"]],
  );
  await ok.client.call("close", { timeout_seconds: 1 });
  const bad = startSession({ fake: fakeFactory({ entrypoint: ["exit"], cmd: ["3"] }) });
  const r = await bad.client.call("create", { image: "alpine:latest", launch_entrypoint: true });
  assert.deepEqual(r.error, {
    code: RpcCode.VmFailed,
    message: "start image entrypoint: exit code 3",
  });
  assert.deepEqual(bad.fake.ends, ["discard vm-fake0001"]);
  // image_config overrides the image's command; without launch_entrypoint nothing starts.
  const over = startSession({ fake: fakeFactory({ entrypoint: ["exit"], cmd: ["3"] }) });
  await created(over, {
    launch_entrypoint: true,
    image_config: { entrypoint: ["echo"], cmd: ["hi"] },
  });
  await created(over);
  assert.deepEqual(
    over.fake.created.map((sb) => sb.spawned.length),
    [1, 0],
  );
});

test("a no_network sandbox gets its add_hosts in /etc/hosts", async () => {
  const h = startSession();
  const sbPromise = created(h, {
    network: { no_network: true, add_hosts: [{ host: "db.local", ip: "127.0.0.1" }] },
  });
  await sbPromise;
  assert.equal(
    h.fake.created[0]?.files.get("/etc/hosts")?.data.toString(),
    "127.0.0.1\tdb.local\n",
  );
});
