// POST /v1/sandboxes takes `{ options?, command? }` and nothing else: a body of another shape
// (the options alone, an array, null) was read as "no options" and booted a default sandbox
// (network on, the caller's `noNetwork` dropped), or was a 500. An oversized chunked body got
// a reset connection instead of the 413.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { fakeNodeForFile } from "../helpers/test-node.js";

const fx = fakeNodeForFile("node-create-body");

async function post(body: string): Promise<{ status: number; code: string | undefined }> {
  const res = await fetch(`${fx.node.running.url}/v1/sandboxes`, {
    method: "POST",
    headers: { authorization: `Bearer ${fx.node.token}`, "content-type": "application/json" },
    body,
  });
  const json = (await res.json()) as { error?: { code?: string } };
  return { status: res.status, code: json.error?.code };
}

test("a body that is not { options, command } is a 400, and nothing boots", async () => {
  const bodies = [
    "[1,2]",
    '"x"',
    "1",
    "null",
    '{"options":null}',
    '{"options":[]}',
    '{"noNetwork":true,"memoryMb":2048}',
    '{"options":{},"extra":1}',
    '{"command":"sh"}',
  ];
  for (const body of bodies)
    assert.deepEqual(await post(body), { status: 400, code: "ErrInvalidConfig" }, body);
  assert.equal(fx.host.entries.size, 0);
  assert.equal((await post('{"options":{"noNetwork":true}}')).status, 201);
});

test("an oversized chunked body gets the 413, not a reset connection", async () => {
  const url = new URL(fx.node.running.url);
  const socket = connect(Number(url.port), url.hostname);
  let response = "";
  socket.on("data", (chunk: Buffer) => (response += chunk.toString("latin1")));
  const closed = new Promise<Error | undefined>((resolve) => {
    socket.once("error", resolve);
    socket.once("close", () => resolve(undefined));
  });
  await new Promise((resolve) => socket.once("connect", resolve));
  socket.write(
    "POST /v1/sandboxes HTTP/1.1\r\nHost: node\r\n" +
      `Authorization: Bearer ${fx.node.token}\r\nTransfer-Encoding: chunked\r\n\r\n`,
  );
  // 2 MiB in 64 KiB chunks: over the 1 MiB limit halfway through.
  const chunk = Buffer.alloc(64 * 1024, "x");
  for (let i = 0; i < 32; i++) {
    const room = socket.write(`${chunk.length.toString(16)}\r\n`) && socket.write(chunk);
    socket.write("\r\n");
    if (!room) await new Promise((resolve) => socket.once("drain", resolve));
  }
  socket.end("0\r\n\r\n");
  assert.equal(await closed, undefined, "the connection was reset");
  assert.match(response, /^HTTP\/1\.1 413 /);
  assert.match(response, /"code":"ErrTooLarge"/);
});
