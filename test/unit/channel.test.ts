import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ErrExec,
  ErrFile,
  ErrProtocol,
  ErrVMNotRunning,
  WheellockError,
} from "../../src/errors.js";
import { GuestFileError } from "../../src/channel/index.js";
import { FrameType, GUEST_WINDOW, PROTOCOL_VERSION } from "../../src/channel/contract.js";
import { encodeFrame } from "../../src/channel/frame.js";
import { encodeRecord, field } from "../../src/channel/record.js";
import { helloFrame, i32pair } from "./channel-fake-guest.js";
import { collect, pattern, setup, tick, until } from "./channel-setup.js";
import { once } from "node:events";
import type { Duplex } from "node:stream";

async function endOf(io: Duplex): Promise<boolean> {
  io.resume();
  await once(io, "end");
  return true;
}

test("hello resolves, and nothing is sent to the guest before it", async () => {
  const { channel, guest } = setup({ hello: false });
  const ping = channel.ping();
  await tick(20);
  assert.equal(guest.received.length, 0, "host must hold frames until HELLO");
  guest.hello();
  assert.deepEqual(await channel.hello, {
    version: PROTOCOL_VERSION,
    bootMs: 1234,
    agent: "fake-agent/1",
  });
  await ping;
  assert.deepEqual(guest.violations, []);
  channel.close();
});

test("stat: OK returns the decoded record, ERROR rejects with ErrFile carrying errno", async () => {
  const { channel, guest } = setup();
  guest.files.set("/etc/motd", Buffer.from("hi there"));
  const stat = await channel.stat("/etc/motd");
  assert.equal(stat.name, "motd");
  assert.equal(stat.sizeBytes, 8);
  assert.equal(stat.mode, 0o100644);

  const err = await channel.stat("/nope").then(
    () => assert.fail("expected rejection"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ErrFile && err instanceof GuestFileError);
  assert.equal(err.errno, "ENOENT");
  assert.equal(err.errnoNumber, 2);
  assert.equal(err.path, "/nope");
  assert.match(err.message, /\/nope: No such file or directory/);
  channel.close();
});

test("exec keeps stdout and stderr apart and reports the exit code", async () => {
  const { channel } = setup();
  const p = channel.exec({ argv: ["split"], env: ["PATH=/bin"] });
  const [pid, out, err, exit] = await Promise.all([
    p.started,
    collect(p.stdout),
    collect(p.stderr),
    p.exit,
  ]);
  assert.equal(pid, 1001);
  assert.equal(out.toString(), "out1 out2");
  assert.equal(err.toString(), "err1 err2");
  assert.deepEqual(exit, { exitCode: 3, signal: 0 });
  channel.close();
});

test("exec sends the EXEC record as specified", async () => {
  const { channel, guest } = setup();
  const p = channel.exec({
    argv: ["echo", "a b", "c"],
    env: ["X=1"],
    cwd: "/tmp",
    user: "1000:1000",
    tty: { rows: 24, cols: 80 },
  });
  assert.equal((await collect(p.stdout)).toString(), "a b c\n");
  const frame = guest.received.find((f) => f.type === FrameType.Exec);
  assert.equal(
    frame?.payload.toString("hex"),
    encodeRecord([
      field.string(1, "echo"),
      field.string(1, "a b"),
      field.string(1, "c"),
      field.string(2, "X=1"),
      field.string(3, "/tmp"),
      field.string(4, "1000:1000"),
      field.u8(5, 1),
      field.u32(6, 24),
      field.u32(7, 80),
    ]).toString("hex"),
  );
  channel.close();
});

test("stdin reaches the guest and end() sends EOF", async () => {
  const { channel, guest } = setup();
  const p = channel.exec({ argv: ["cat"], env: [] });
  p.stdin.write("abc");
  p.stdin.write(Buffer.from("def"));
  p.stdin.end();
  assert.equal((await collect(p.stdout)).toString(), "abcdef");
  assert.deepEqual(await p.exit, { exitCode: 0, signal: 0 });
  assert.ok(guest.received.some((f) => f.type === FrameType.Eof));
  channel.close();
});

test("signal and resize reach the guest; a killed process reports its signal", async () => {
  const { channel, guest } = setup();
  const p = channel.exec({ argv: ["sleep"], env: [], tty: { rows: 1, cols: 1 } });
  await p.started;
  p.resize(50, 132);
  p.signal(15);
  assert.deepEqual(await p.exit, { exitCode: -1, signal: 15 });
  const resize = guest.received.find((f) => f.type === FrameType.Resize);
  assert.equal(resize?.payload.toString("hex"), "00000032" + "00000084");
  channel.close();
});

test("a program that cannot start rejects started and exit with ErrExec", async () => {
  const { channel } = setup();
  const p = channel.exec({ argv: ["id"], env: [], user: "nobody" });
  await assert.rejects(
    p.started,
    (e: unknown) => e instanceof ErrExec && /unknown user: nobody/.test(e.message),
  );
  await assert.rejects(p.exit, ErrExec);
  const bad = channel.exec({ argv: ["a\0b"], env: [] });
  await assert.rejects(bad.started, ErrExec);
  channel.close();
});

test("close() on an exec sends CLOSE and ends its streams", async () => {
  const { channel, guest } = setup();
  const p = channel.exec({ argv: ["sleep"], env: [] });
  await p.started;
  p.close();
  await assert.rejects(
    p.exit,
    (e: unknown) => e instanceof WheellockError && e.code === "ErrClosed",
  );
  assert.equal((await collect(p.stdout)).length, 0);
  await until(() => guest.received.some((f) => f.type === FrameType.Close), "CLOSE at the guest");
  // Frames racing with the CLOSE are tolerated...
  guest.send(FrameType.Stdout, 1, Buffer.from("late"));
  guest.exit(1, -1, 9);
  await channel.ping();
  assert.equal(channel.closed, false);
  channel.close();
});

test("when the io ends, everything pending rejects with ErrVMNotRunning", async () => {
  const { channel, guest } = setup();
  await channel.hello;
  const p = channel.exec({ argv: ["hang"], env: [] });
  const ping = channel.ping();
  const reader = channel.readFile("/missing-but-never-answered");
  const readErr = new Promise<unknown>((resolve) => reader.on("error", resolve));
  guest.io.end();
  await assert.rejects(p.exit, ErrVMNotRunning);
  await assert.rejects(ping, ErrVMNotRunning);
  assert.ok((await readErr) instanceof ErrVMNotRunning);
  assert.equal(channel.closed, true);
  await assert.rejects(channel.ping(), ErrVMNotRunning);
  await assert.rejects(channel.exec({ argv: ["x"], env: [] }).started, ErrVMNotRunning);
});

/** Each case: the guest sends `bytes` after HELLO while an exec (stream 1) is pending. */
const protocolErrors: [string, (started: Buffer) => Buffer[], RegExp][] = [
  ["HELLO twice", () => [helloFrame()], /HELLO twice/],
  [
    "EXIT twice",
    (s) => [
      s,
      encodeFrame(FrameType.Exit, 1, i32pair(0, 0)),
      encodeFrame(FrameType.Exit, 1, i32pair(0, 0)),
    ],
    /already ended/,
  ],
  [
    "data before STARTED",
    () => [encodeFrame(FrameType.Stdout, 1, Buffer.from("x"))],
    /before STARTED/,
  ],
  ["STARTED twice", (s) => [s, s], /STARTED twice/],
  [
    "EXIT with a short payload",
    (s) => [s, encodeFrame(FrameType.Exit, 1, Buffer.alloc(4))],
    /EXIT payload/,
  ],
  ["host-only frame type", () => [encodeFrame(FrameType.Exec, 1)], /host-to-guest/],
  ["OK on an exec stream", (s) => [s, encodeFrame(FrameType.Ok, 1)], /unexpected OK/],
  ["ERROR without MESSAGE", () => [encodeFrame(FrameType.Error, 1)], /missing MESSAGE/],
  [
    "data beyond the window",
    (s) => [
      s,
      ...Array.from({ length: GUEST_WINDOW / 65536 + 1 }, () =>
        encodeFrame(FrameType.Stdout, 1, Buffer.alloc(65536)),
      ),
    ],
    /only 0 bytes of credit/,
  ],
  [
    "bad UTF-8 in ERROR",
    () => [encodeFrame(FrameType.Error, 1, encodeRecord([field.bytes(1, Buffer.from([0xff]))]))],
    /UTF-8/,
  ],
  [
    "truncated record",
    () => [encodeFrame(FrameType.Started, 1, Buffer.from([1, 0, 0, 0, 4, 0]))],
    /truncated|claims/,
  ],
  [
    "unknown streams beyond the limit",
    () => Array.from({ length: 20 }, () => encodeFrame(FrameType.Ok, 99)),
    /more than 16 frames/,
  ],
];

for (const [name, build, pattern_] of protocolErrors) {
  test(`protocol error: ${name} -> one fatal ErrProtocol, everything rejected`, async () => {
    const { channel, guest, fatals } = setup({ maxUnknownFrames: 16 });
    await channel.hello;
    const p = channel.exec({ argv: ["raw"], env: [] });
    const ping = channel.ping(); // stream 2: the fake guest answers it
    await ping;
    const hang = channel.exec({ argv: ["hang"], env: [] }); // stream 3: started, never exits
    await hang.started;
    const started = encodeFrame(FrameType.Started, 1, encodeRecord([field.u32(1, 42)]));
    for (const bytes of build(started)) guest.io.write(bytes);
    await assert.rejects(
      hang.exit,
      (e: unknown) => e instanceof ErrProtocol && pattern_.test(e.message),
    );
    await assert.rejects(collect(hang.stdout), ErrProtocol);
    await until(() => fatals.length > 0, "onFatal");
    assert.equal(fatals.length, 1);
    assert.equal(fatals[0], await hang.exit.catch((e: unknown) => e));
    assert.equal(channel.closed, true);
    // Stream 1 either finished before the bad frame (EXIT twice) or failed with the same error.
    const [first] = await Promise.allSettled([p.exit]);
    if (first.status === "rejected") assert.equal(first.reason, fatals[0]);
    await assert.rejects(channel.ping(), ErrProtocol);
  });
}

test("HELLO with another protocol version is fatal; close() is not", async () => {
  const { channel, guest, fatals } = setup({ hello: false });
  guest.io.write(helloFrame(PROTOCOL_VERSION + 1));
  await assert.rejects(channel.hello, /agent speaks protocol version 3, host speaks 2/);
  assert.equal(fatals.length, 1);

  const other = setup();
  await other.channel.hello;
  other.channel.close();
  await tick(5);
  assert.equal(other.fatals.length, 0);
  assert.ok(
    other.guest.io.readableEnded || other.guest.io.destroyed || (await endOf(other.guest.io)),
  );
});

test("ten interleaved streams each get exactly their own bytes", async () => {
  const { channel } = setup();
  const runs = Array.from({ length: 10 }, (_, i) => {
    const size = 100_000 + i * 37_003;
    const p = channel.exec({ argv: ["flood", String(size), String(1000 + i * 997)], env: [] });
    return Promise.all([p.started, collect(p.stdout), p.exit]).then(([pid, out]) => ({
      pid,
      out,
      size,
    }));
  });
  const results = await Promise.all(runs);
  for (const { pid, out, size } of results) {
    const id = pid - 1000;
    assert.equal(out.length, size);
    assert.ok(out.equals(pattern(size, id)), `stream ${id} intact`);
  }
  channel.close();
});

test("readFile errors surface as the stream's 'error'", async () => {
  const { channel } = setup();
  await assert.rejects(
    collect(channel.readFile("/nope")),
    (e: unknown) => e instanceof ErrFile && e.errno === "ENOENT",
  );
  await assert.rejects(
    channel.writeFile({ path: "/ro/x" }, Buffer.from("x")),
    (e: unknown) => e instanceof ErrFile && e.errno === "EROFS",
  );
  channel.close();
});

test("stat and list decode the stat records; a hostile entry name is fatal", async () => {
  const { channel, guest, fatals } = setup();
  guest.files.set("/d/a", Buffer.from("1"));
  guest.files.set("/d/b", Buffer.from("22"));
  assert.equal((await channel.stat("/d/b")).sizeBytes, 2);
  assert.deepEqual(
    (await channel.listFiles("/d")).map((e) => [e.name, e.sizeBytes]),
    [
      ["a", 1],
      ["b", 2],
    ],
  );
  guest.files.set("/d/../../etc/passwd", Buffer.from("x"));
  await assert.rejects(channel.listFiles("/d"), /invalid name/);
  assert.equal(fatals.length, 1);
});

test("an exception thrown by a user's data handler closes the channel instead of crashing", async () => {
  const { channel, fatals } = setup();
  const p = channel.exec({ argv: ["echo", "hi"], env: [] });
  p.stdout.on("data", () => {
    throw new Error("user bug");
  });
  await assert.rejects(p.exit, /user bug/);
  assert.equal(fatals[0]?.message, "user bug");
  assert.equal(channel.closed, true);
});
