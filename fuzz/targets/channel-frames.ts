/**
 * Control-port frames and their TLV records, parsed through the channel's public entry points
 * (FrameParser, decodeRecord, decodeStat, decodeListEntry). Oracles: only ErrProtocol may
 * escape; the frames (and the error) must not depend on how the stream was chunked; no payload
 * beyond MAX_PAYLOAD; nothing delivered after the parser failed.
 */
// The wire codec is internal to src/channel (its index exports the typed GuestAgent only);
// the fuzzer is one of the few that must speak the wire itself, like the channel's own tests.
import { FrameType, HelloTag, MAX_PAYLOAD, PROTOCOL_VERSION } from "../../src/channel/contract.js";
import {
  FrameParser,
  encodeFrame,
  encodeFrameHeader,
  type Frame,
} from "../../src/channel/frame.js";
import { decodeRecord, encodeRecord, field, type DecodedRecord } from "../../src/channel/record.js";
import { decodeListEntry } from "../../src/channel/stat.js";
import { ErrProtocol } from "../../src/errors.js";
import { chunked } from "../random.js";
import { allowing, check, splitByLength, type FuzzTarget, type UnitCodec } from "../target.js";

/** Header size and where its payload length sits, read from real encoded headers (a format
 * change moves them; the splitter follows). */
const HEADER_BYTES = encodeFrame(FrameType.Ping, 0).length;
const LENGTH_PROBE = 0x030201;
const LENGTH_AT = encodeFrameHeader(FrameType.Ping, 0, LENGTH_PROBE).indexOf(
  Buffer.from([0, 3, 2, 1]),
);

interface Parsed {
  frames: { type: number; streamId: number; payload: string }[];
  error: string | undefined;
}

function parse(chunks: Buffer[], records: boolean): Parsed {
  const frames: Parsed["frames"] = [];
  let error: string | undefined;
  let failed = false;
  const parser = new FrameParser((f: Frame) => {
    check(!failed, "frame delivered after the parser failed");
    check(f.payload.length <= MAX_PAYLOAD, `payload of ${f.payload.length} bytes`);
    frames.push({ type: f.type, streamId: f.streamId, payload: f.payload.toString("hex") });
    if (records) readRecords(f);
  });
  for (const chunk of chunks) {
    try {
      parser.push(chunk);
    } catch (err) {
      if (!(err instanceof ErrProtocol)) throw err;
      error ??= err.message;
      failed = true;
    }
  }
  return { frames, error };
}

/**
 * The accessors the channel would use on each field, picked by width (calling every accessor
 * on every field would spend the run constructing width-mismatch errors).
 */
function readRecords(f: Frame): void {
  const rec = allowing([ErrProtocol], () => decodeRecord(f.payload, "fuzz"));
  if (rec === undefined) return;
  for (const { tag, value } of rec.fields) {
    const reads: ((r: DecodedRecord) => unknown)[] = [(r) => r.strings(tag), (r) => r.records(tag)];
    if (value.length === 1) reads.push((r) => r.u8(tag));
    if (value.length === 4) reads.push((r) => r.u32(tag));
    if (value.length === 8) reads.push((r) => r.u64(tag));
    for (const read of reads) allowing([ErrProtocol], () => read(rec));
  }
  allowing([ErrProtocol], () => decodeListEntry(rec));
}

function unitBytes(input: Buffer, at: number): number | undefined {
  return HEADER_BYTES + input.readUInt32BE(at + LENGTH_AT);
}

export const frameUnits: UnitCodec = {
  split: (input) => splitByLength(input, HEADER_BYTES, unitBytes),
  fix: (unit) => {
    if (unit.length < HEADER_BYTES) return unit;
    const out = Buffer.from(unit);
    out.writeUInt32BE(unit.length - HEADER_BYTES, LENGTH_AT);
    return out;
  },
};

export function helloFrame(): Buffer {
  return encodeFrame(
    FrameType.Hello,
    0,
    encodeRecord([
      field.u32(HelloTag.Version, PROTOCOL_VERSION),
      field.u64(HelloTag.BootMs, 1234),
      field.string(HelloTag.Agent, "fuzz-agent/1"),
    ]),
  );
}

export function statRecord(name: string): Buffer {
  return encodeRecord([
    field.string(1, name),
    field.u64(2, 9),
    field.u32(3, 0o100644),
    field.u32(4, 0),
    field.u32(5, 0),
    field.u64(6, 1_700_000_000_000),
  ]);
}

export const channelFrames: FuzzTarget = {
  name: "channel-frames",
  description: "control-port frame parser and TLV records (src/channel)",
  maxInputBytes: 64 * 1024,
  timeLimitMs: 1000,
  units: frameUnits,
  dictionary: [Buffer.from([0x57]), Buffer.from([0, 0, 0, 0]), Buffer.from([0xff, 0xff, 0xff])],
  seeds: () => [
    Buffer.concat([
      helloFrame(),
      encodeFrame(FrameType.Started, 1, encodeRecord([field.u32(1, 7)])),
      encodeFrame(FrameType.Stdout, 1, Buffer.from("out")),
      encodeFrame(FrameType.Credit, 1, Buffer.from([0, 0, 1, 0])),
      encodeFrame(FrameType.Ok, 2, statRecord("f")),
      encodeFrame(FrameType.Ok, 3, encodeRecord([field.record(1, [field.string(1, "a")])])),
      encodeFrame(FrameType.Error, 4, encodeRecord([field.string(1, "no"), field.u32(2, 2)])),
      encodeFrame(FrameType.Exit, 1, Buffer.alloc(8)),
    ]),
  ],
  run(input) {
    const whole = parse([input], true);
    const split = parse(chunked(input), false);
    check(
      JSON.stringify(whole) === JSON.stringify(split),
      "frames differ between whole and chunked delivery",
    );
  },
};
