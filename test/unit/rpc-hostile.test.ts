// Hostile clients (issue 12, item 6): garbage, truncated JSON, huge lines, 10,000 requests in
// flight, a client that stops reading, stdin closed mid-stream. Errors, not death; bounded
// memory; the session ends promptly at EOF.
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { RpcCode, RpcSession } from "../../src/rpc/index.js";
import { mulberry32 } from "../helpers/seeded-random.js";
import { created, startSession } from "./rpc-client.js";
import { fakeFactory } from "./rpc-fake-sandbox.js";
import { PROMPTLY_MS } from "../helpers/timing.js";

const MiB = 1024 * 1024;

test("garbage, deep nesting, invalid UTF-8 and NULs: one -32700 each, the session goes on", async () => {
  const h = startSession();
  await created(h);
  const rand = mulberry32(12);
  let lines = 0;
  for (let i = 0; i < 300; i++) {
    const bytes = Buffer.from(
      Array.from({ length: 1 + Math.floor(rand() * 200) }, () => Math.floor(rand() * 256)),
    );
    // A random line must not contain our separator, and must not be blank.
    const line = Buffer.from(bytes.filter((b) => b !== 0x0a));
    if (line.toString("utf8").trim() === "") continue;
    h.client.write(Buffer.concat([line, Buffer.from("\n")]));
    lines++;
  }
  h.client.write(`${"[".repeat(200_000)}\n`);
  h.client.write(
    `{"jsonrpc":"2.0","method":"exec","id":1,"params":{"command":"${"\\u0000".repeat(10)}\n`,
  );
  const ok = await h.client.call("exec", { command: "echo alive" }, 10_000);
  assert.equal(ok.result?.exit_code, 0);
  const parseErrors = h.client.messages.filter((m) => m.error?.code === RpcCode.Parse).length;
  assert.ok(parseErrors >= lines, `${parseErrors} parse errors for ${lines} garbage lines`);
});

test("truncated JSON then EOF: a parse error, then the session ends", async () => {
  const h = startSession();
  h.client.write('{"jsonrpc":"2.0","method":"exec","id":5,"para');
  h.client.input.end();
  await h.session.done;
  assert.deepEqual(h.client.messages, [
    { jsonrpc: "2.0", error: { code: RpcCode.Parse, message: "Parse error" } },
  ]);
});

test("10,000 requests in flight: all run in turns and all answer, in bounded memory", async () => {
  const h = startSession({ maxRunning: 256 });
  await created(h);
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const ids: number[] = [];
  for (let i = 0; i < 10_000; i++) ids.push(h.client.request("exec", { command: `echo ${i}` }));
  const before = h.client.results;
  await h.client.until(() => h.client.results - before === 10_000, 60_000);
  const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
  assert.ok(heapGrowth < 200 * MiB, `heap grew ${Math.round(heapGrowth / MiB)} MiB`);
  const last = await h.client.response(ids.at(-1) as number);
  assert.equal(Buffer.from(last.result?.stdout as string, "base64").toString(), "9999\n");
});

test("past the queue: the excess is refused with -32000; cancel and EOF still get through", async () => {
  const h = startSession({ maxRunning: 100, maxQueued: 1000 });
  await created(h);
  const ids: number[] = [];
  for (let i = 0; i < 1500; i++) ids.push(h.client.request("exec", { command: "hang" }));
  const refused = await h.client.waitFor((m) => m.error?.code === RpcCode.VmFailed);
  assert.match(
    refused.error?.message ?? "",
    /too many requests in flight \(100 running, 1000 queued\)/,
  );
  await h.client.until(() => h.client.errors.get(RpcCode.VmFailed) === 400);
  // A queued request can be cancelled; so can a running one.
  const queued = ids[900] as number;
  assert.deepEqual((await h.client.call("cancel", { id: queued })).result, { cancelled: true });
  assert.equal((await h.client.response(queued)).error?.code, RpcCode.Cancelled);
  const started = Date.now();
  h.client.input.end();
  await h.session.done;
  assert.ok(Date.now() - started < PROMPTLY_MS, `${Date.now() - started} ms`);
  await h.client.until(() => h.client.errors.get(RpcCode.Cancelled) === 1100);
});

test("a client that stops reading: streamed output waits (bounded) instead of piling up", async () => {
  const input = new PassThrough();
  const output = new PassThrough({ highWaterMark: 64 * 1024 });
  const fake = fakeFactory();
  const session = new RpcSession({
    input,
    output,
    factory: fake.factory,
    outputHighWaterBytes: 2 * MiB,
  });
  input.write('{"jsonrpc":"2.0","method":"create","id":1,"params":{"image":"a"}}\n');
  input.write(
    '{"jsonrpc":"2.0","method":"exec_stream","id":2,"params":{"command":"bytes 104857600"}}\n',
  );
  // Nobody reads `output` for a while.
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(output.writableLength < 4 * MiB, `${output.writableLength} bytes queued`);
  let total = 0;
  let done = false;
  output.on("data", (chunk: Buffer) => {
    for (const line of chunk.toString("latin1").split("\n")) {
      if (line.includes('"exec_stream.stdout"'))
        total += Buffer.from(JSON.parse(line).params.data, "base64").length;
      if (line.includes('"exit_code"')) done = true;
    }
  });
  while (!done) await new Promise((r) => setTimeout(r, 20));
  assert.equal(total, 100 * MiB);
  input.end();
  await session.done;
});

test("stdin closed in the middle of a write_file line: no reply for it, the session ends", async () => {
  const h = startSession();
  await created(h);
  h.client.write(
    `{"jsonrpc":"2.0","method":"write_file","id":9,"params":{"path":"/tmp/x","content":"${"QUFB".repeat(100_000)}`,
  );
  h.client.input.end();
  await h.session.done;
  assert.equal(h.fake.created[0]?.files.has("/tmp/x"), false);
  assert.deepEqual(h.fake.ends, ["kill vm-fake0001"]);
});
