// ATTRIBUTE and USAGE on the wire (docs/PROTOCOL.md): keys out, one entry per key back, and a
// reply that breaks the spec ends the session like any other protocol error.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AttributeTag, AttributionKind, AttributionState } from "../../src/channel/contract.js";
import { field } from "../../src/channel/record.js";
import { setup, until } from "./channel-setup.js";

const entry = (fields: ReturnType<typeof field.u8>[]) => field.record(1, fields);
/** Tag 7, past 2^53 (a number would round it); the pid entry below is an older agent's: none. */
const CGROUP = 0xfedc_ba98_7654_3210n;

test("keys go out by kind, answers come back in order and typed", async () => {
  const { channel, guest } = setup();
  guest.attributeReply = () => [
    entry([
      field.u8(1, AttributionKind.Pid),
      field.u32(2, 10),
      field.u8(3, AttributionState.Exec),
      field.u32(4, 7),
      field.u32(5, 10),
      field.string(6, "sh"),
      field.string(6, "-c"),
      field.string(6, ""),
    ]),
    entry([
      field.u8(1, AttributionKind.Tcp),
      field.u32(2, 40000),
      field.u8(3, AttributionState.Gone),
    ]),
    entry([
      field.u8(1, AttributionKind.Udp),
      field.u32(2, 53),
      field.u8(3, AttributionState.NoExec),
      field.u32(5, 88),
      field.u64(7, CGROUP),
    ]),
  ];
  const answers = await channel.attribute([
    { kind: "pid", key: 10 },
    { kind: "tcp", key: 40000 },
    { kind: "udp", key: 53 },
  ]);
  const asked = guest.requests.at(-1)!.record;
  assert.deepEqual(
    asked.all(AttributeTag.Pid).map((b) => b.readUInt32BE(0)),
    [10],
  );
  assert.deepEqual(
    asked.all(AttributeTag.TcpPort).map((b) => b.readUInt32BE(0)),
    [40000],
  );
  assert.deepEqual(
    asked.all(AttributeTag.UdpPort).map((b) => b.readUInt32BE(0)),
    [53],
  );
  assert.deepEqual(answers, [
    { kind: "pid", key: 10, state: "exec", pid: 10, execStream: 7, argv: ["sh", "-c", ""] },
    { kind: "tcp", key: 40000, state: "gone" },
    { kind: "udp", key: 53, state: "none", pid: 88, cgroup: CGROUP },
  ]);
  assert.deepEqual(await channel.usage(), { diskWrittenBytes: 8192 });
});

test("an EXEC without the exec state is a protocol error that ends the session", async () => {
  const { channel, guest, fatals } = setup();
  guest.attributeReply = () => [
    entry([
      field.u8(1, AttributionKind.Pid),
      field.u32(2, 10),
      field.u8(3, AttributionState.NoExec),
      field.u32(4, 7),
      field.u32(5, 10),
    ]),
  ];
  await assert.rejects(channel.attribute([{ kind: "pid", key: 10 }]));
  await until(() => fatals.length > 0, "the session to end");
  assert.match(fatals[0]!.message, /EXEC must come with STATE exec/);
});

test("more than 64 keys are refused on the host before anything is sent", async () => {
  const { channel, guest } = setup();
  const before = guest.requests.length;
  await assert.rejects(
    channel.attribute(Array.from({ length: 65 }, (_, i) => ({ kind: "pid" as const, key: i + 1 }))),
    /at most 64 ATTRIBUTE keys/,
  );
  assert.equal(guest.requests.length, before);
});

test("a command line beyond 16 arguments or 512 bytes is a protocol error (answers are kept)", async () => {
  const answerWith = (args: string[]) =>
    entry([
      field.u8(1, AttributionKind.Pid),
      field.u32(2, 10),
      field.u8(3, AttributionState.NoExec),
      field.u32(5, 10),
      ...args.map((a) => field.string(6, a)),
    ]);
  // What the agent sends at most: 512 bytes read, NULs between the arguments.
  const fits = setup();
  fits.guest.attributeReply = () => [answerWith(["a".repeat(255), "b".repeat(256)])];
  const [ok] = await fits.channel.attribute([{ kind: "pid", key: 10 }]);
  assert.equal(ok?.argv?.length, 2);
  for (const args of [Array.from({ length: 17 }, () => "x"), ["a".repeat(256), "b".repeat(256)]]) {
    const { channel, guest, fatals } = setup();
    guest.attributeReply = () => [answerWith(args)];
    await assert.rejects(channel.attribute([{ kind: "pid", key: 10 }]));
    await until(() => fatals.length > 0, "the session to end");
    assert.match(fatals[0]!.message, /command line over 16 arguments or 512 bytes/);
  }
});
