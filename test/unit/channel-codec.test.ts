import { test } from "node:test";
import assert from "node:assert/strict";
import { ErrProtocol } from "../../src/errors.js";
import { FrameType, MAX_PAYLOAD } from "../../src/channel/contract.js";
import { FrameParser, encodeFrame, type Frame } from "../../src/channel/frame.js";
import { DecodedRecord, decodeRecord, encodeRecord, field } from "../../src/channel/record.js";
import { decodeListEntry, decodeStat } from "../../src/channel/stat.js";

function parseAll(chunks: Buffer[]): Frame[] {
  const frames: Frame[] = [];
  const parser = new FrameParser((f) => frames.push({ ...f, payload: Buffer.from(f.payload) }));
  for (const c of chunks) parser.push(c);
  return frames;
}

test("frame header matches the spec byte for byte", () => {
  const bytes = encodeFrame(FrameType.Credit, 0x01020304, Buffer.from([0, 4, 0, 0]), 0xa1b2c3d4);
  assert.equal(
    bytes.toString("hex"),
    "57190000" + "01020304" + "00000004" + "a1b2c3d4" + "00040000",
  );
});

test("record TLV matches the spec byte for byte", () => {
  const rec = encodeRecord([
    field.u32(1, 7),
    field.string(3, "hi"),
    field.u8(5, 1),
    field.u64(2, 2 ** 40),
  ]);
  assert.equal(
    rec.toString("hex"),
    "01" +
      "00000004" +
      "00000007" +
      "03" +
      "00000002" +
      "6869" +
      "05" +
      "00000001" +
      "01" +
      "02" +
      "00000008" +
      "0000010000000000",
  );
  const back = decodeRecord(rec);
  assert.equal(back.u32(1), 7);
  assert.equal(back.string(3), "hi");
  assert.equal(back.u8(5), 1);
  assert.equal(back.u64(2), 2 ** 40);
});

test("parser reassembles frames split at every byte boundary", () => {
  const stream = Buffer.concat([
    encodeFrame(FrameType.Stdout, 3, Buffer.from("hello world")),
    encodeFrame(FrameType.Ok, 4),
    encodeFrame(FrameType.Stderr, 5, Buffer.alloc(1000, 7)),
  ]);
  for (let cut = 0; cut <= stream.length; cut++) {
    for (const step of [1, 5, 13]) {
      const chunks: Buffer[] = [stream.subarray(0, cut)];
      for (let i = cut; i < stream.length; i += step) chunks.push(stream.subarray(i, i + step));
      const frames = parseAll(chunks);
      assert.deepEqual(
        frames.map((f) => [f.type, f.streamId, f.payload.length]),
        [
          [FrameType.Stdout, 3, 11],
          [FrameType.Ok, 4, 0],
          [FrameType.Stderr, 5, 1000],
        ],
      );
      assert.equal(frames[0]?.payload.toString(), "hello world");
    }
  }
});

test("parser hands out whole payloads without copying when they sit in one chunk", () => {
  const wire = encodeFrame(FrameType.Stdout, 1, Buffer.alloc(4096, 1));
  let payload: Buffer | undefined;
  new FrameParser((f) => (payload = f.payload)).push(wire);
  assert.equal(payload?.buffer, wire.buffer);
});

function header(bytes: number[]): Buffer {
  return Buffer.from(bytes);
}

test("parser rejects corrupt headers as soon as the 16 bytes are in", () => {
  const cases: [string, Buffer, RegExp][] = [
    ["bad magic", header([0x58, 0x21, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]), /magic/],
    [
      "unknown type",
      header([0x57, 0x03, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
      /unknown frame type 0x03/,
    ],
    ["reserved", header([0x57, 0x21, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]), /reserved/],
    // 4 GiB claimed: must fail on the header alone, before any allocation.
    [
      "oversize",
      header([0x57, 0x13, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
      /exceeds 262144/,
    ],
  ];
  for (const [name, bytes, pattern] of cases) {
    const parser = new FrameParser(() => assert.fail(`${name}: no frame expected`));
    assert.throws(
      () => parser.push(bytes),
      (err: unknown) => err instanceof ErrProtocol && pattern.test(err.message),
      name,
    );
  }
  const atLimit = encodeFrame(FrameType.Stdout, 1, Buffer.alloc(MAX_PAYLOAD));
  assert.equal(parseAll([atLimit])[0]?.payload.length, MAX_PAYLOAD);
});

test("record decoding rejects truncation, bad widths, bad UTF-8, NUL and repeats", () => {
  const good = encodeRecord([field.string(1, "x"), field.u32(2, 5)]);
  for (let cut = 1; cut < good.length; cut++) {
    if (cut === 6) continue; // exactly after the first entry: a valid shorter record
    assert.throws(() => decodeRecord(good.subarray(0, cut)), ErrProtocol, `cut at ${cut}`);
  }
  const rec = (fields: ReturnType<typeof field.bytes>[]): DecodedRecord =>
    decodeRecord(encodeRecord(fields));
  assert.throws(() => rec([field.bytes(2, Buffer.alloc(3))]).u32(2), /expected 4/);
  assert.throws(() => rec([field.bytes(1, Buffer.from([0xc3, 0x28]))]).string(1), /UTF-8/);
  assert.throws(() => rec([field.bytes(1, Buffer.from("a\0b"))]).string(1), /NUL/);
  assert.throws(() => rec([field.u32(1, 1), field.u32(1, 2)]).u32(1), /repeated/);
  assert.deepEqual(
    rec([field.string(1, "a"), field.string(9, "?"), field.string(1, "b")]).strings(1),
    ["a", "b"],
  );
  assert.throws(() => rec([field.u64(6, 2n ** 60n)]).u64(6), /too large/);
  assert.throws(() => field.string(1, "nul\0"), RangeError);
  assert.throws(() => field.u32(1, -1), RangeError);
});

test("decodeStat reads every field and requires the mandatory ones", () => {
  const fields = [
    field.string(1, "link"),
    field.u64(2, 12),
    field.u32(3, 0o120777),
    field.u32(4, 1000),
    field.u32(5, 100),
    field.u64(6, 1_700_000_000_123),
    field.string(7, "/etc/passwd"),
  ];
  assert.deepEqual(decodeStat(decodeRecord(encodeRecord(fields))), {
    name: "link",
    sizeBytes: 12,
    mode: 0o120777,
    uid: 1000,
    gid: 100,
    mtimeMs: 1_700_000_000_123,
    linkTarget: "/etc/passwd",
  });
  assert.equal("linkTarget" in decodeStat(decodeRecord(encodeRecord(fields.slice(0, 6)))), false);
  assert.throws(() => decodeStat(decodeRecord(encodeRecord(fields.slice(1)))), /missing NAME/);
  for (const name of ["..", "a/b", ""]) {
    const entry = decodeRecord(encodeRecord([field.string(1, name), ...fields.slice(1, 6)]));
    assert.throws(() => decodeListEntry(entry), /invalid name/);
  }
});
