// PORT_FORWARD streams on the host side: connect, data both ways under credits, EOF each way,
// OK at the end; connect errors; and guests that break the stream's rules.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FrameType } from "../../src/channel/contract.js";
import { encodeRecord, field } from "../../src/channel/record.js";
import { collect, setup, until } from "./channel-setup.js";

const started = encodeRecord([]);

test("a forwarded connection carries bytes both ways and half-closes each way", async () => {
  const { channel, guest, fatals } = setup();
  const port = channel.forwardPort(8080);
  await until(() => guest.streams.size === 1, "the guest sees the request");
  const req = guest.received.find((f) => f.type === FrameType.PortForward);
  assert.equal(req?.payload.toString("hex"), encodeRecord([field.u32(1, 8080)]).toString("hex"));
  const id = req?.streamId ?? 0;
  guest.send(FrameType.Started, id, started);
  await port.connected;
  port.writable.end("GET / HTTP/1.0\r\n\r\n");
  assert.equal((await guest.readStdin(id)).toString(), "GET / HTTP/1.0\r\n\r\n");
  // More than one window: the guest can only finish as the host reader returns credit.
  const body = collect(port.readable);
  await guest.write(id, FrameType.Stdout, Buffer.alloc(300_000, "x"));
  guest.send(FrameType.Eof, id);
  assert.equal((await body).length, 300_000);
  guest.ok(id);
  await port.done;
  assert.deepEqual(fatals, []);
  assert.deepEqual(guest.violations, []);
  channel.close();
});

test("data and EOF written before the guest connected wait for STARTED", async () => {
  const { channel, guest, fatals } = setup();
  const port = channel.forwardPort(8080);
  port.writable.end("early");
  await until(() => guest.streams.size === 1, "the guest sees the request");
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(
    guest.received.map((f) => f.type),
    [FrameType.PortForward],
  );
  guest.send(FrameType.Started, 1, started);
  assert.equal((await guest.readStdin(1)).toString(), "early");
  assert.deepEqual(fatals, []);
  channel.close();
});

test("a refused connection rejects with the guest's reason", async () => {
  const { channel, guest } = setup();
  const port = channel.forwardPort(9);
  await until(() => guest.streams.size === 1, "the guest sees the request");
  guest.error(1, "connect 127.0.0.1:9: Connection refused", 111);
  await assert.rejects(port.connected, /Connection refused/);
  await assert.rejects(port.done, /Connection refused/);
  channel.close();
});

for (const [what, frames] of [
  ["STDOUT before STARTED", [[FrameType.Stdout, Buffer.from("x")]]],
  [
    "STDOUT after EOF",
    [
      [FrameType.Started, started],
      [FrameType.Eof, Buffer.alloc(0)],
      [FrameType.Stdout, Buffer.from("x")],
    ],
  ],
  [
    "EOF twice",
    [
      [FrameType.Started, started],
      [FrameType.Eof, Buffer.alloc(0)],
      [FrameType.Eof, Buffer.alloc(0)],
    ],
  ],
  [
    "EXIT on a port stream",
    [
      [FrameType.Started, started],
      [FrameType.Exit, Buffer.alloc(8)],
    ],
  ],
] as const) {
  test(`a guest sending ${what} ends the channel`, async () => {
    const { channel, guest, fatals } = setup();
    const port = channel.forwardPort(80);
    await until(() => guest.streams.size === 1, "the guest sees the request");
    for (const [type, payload] of frames) guest.send(type, 1, payload);
    await until(() => fatals.length === 1, "a protocol error");
    assert.equal(fatals[0]?.name, "ErrProtocol");
    await assert.rejects(port.done);
  });
}

test("EOF from the guest on an exec stream is a protocol error", async () => {
  const { channel, guest, fatals } = setup();
  const proc = channel.exec({ argv: ["raw"], env: [] });
  await until(() => guest.streams.size === 1, "the guest sees the exec");
  guest.send(FrameType.Started, 1, encodeRecord([field.u32(1, 5)]));
  guest.send(FrameType.Eof, 1);
  await until(() => fatals.length === 1, "a protocol error");
  await assert.rejects(proc.exit);
});
