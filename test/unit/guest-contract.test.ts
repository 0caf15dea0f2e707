/**
 * The host<->guest contract is written twice, in src/channel/contract.ts and guest/proto.h.
 * This test parses the header and fails on any number or name that differs, and on anything
 * defined on one side only.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as contract from "../../src/channel/contract.js";
import {
  LIST_DIR_OPCODE,
  NOTIFY_LOST_OPCODE,
  RELAY_ANSWERED_FLAG,
  RELAY_BEHIND_DONE,
  RELAY_NODE_ATTR,
  RELAY_SYNC_WRITES,
  RelayCode,
} from "../../src/vfs/fuse-constants.js";

type Value = number | string;

/** Every `#define NAME value` and `NAME = value` enum entry of the header. */
function parseHeader(text: string): Map<string, Value> {
  const defs = new Map<string, Value>();
  const put = (name: string, value: Value): void => {
    assert.ok(!defs.has(name), `proto.h defines ${name} twice`);
    defs.set(name, value);
  };
  const source = text.replace(/\/\*[\s\S]*?\*\//g, "");
  for (const m of source.matchAll(/^#define\s+(\w+)\s+"([^"]*)"\s*$/gm)) put(m[1]!, m[2]!);
  for (const m of source.matchAll(/^#define\s+(\w+)\s+(0x[0-9a-fA-F]+|\d+)u?\s*$/gm))
    put(m[1]!, Number(m[2]));
  for (const m of source.matchAll(/^\s*(FT_\w+)\s*=\s*(0x[0-9a-fA-F]+|\d+)\s*,/gm))
    put(m[1]!, Number(m[2]));
  return defs;
}

/** What proto.h must define, derived from the host contract by the header's naming rule. */
function expectedHeader(c: typeof contract): Map<string, Value> {
  const expected = new Map<string, Value>([
    ["WL_PROTOCOL_VERSION", c.PROTOCOL_VERSION],
    ["WL_MAGIC", c.FRAME_MAGIC],
    ["WL_HEADER_SIZE", c.FRAME_HEADER_BYTES],
    ["WL_MAX_PAYLOAD", c.MAX_PAYLOAD],
    ["WL_INITIAL_WINDOW", c.INITIAL_WINDOW],
    ["WL_GUEST_WINDOW", c.GUEST_WINDOW],
    ["WL_RECORD_ENTRY_HEADER", c.RECORD_ENTRY_HEADER_BYTES],
    // The FUSE port's one message of our own (src/vfs speaks FUSE; the rest is linux/fuse.h).
    ["WL_FUSE_NOTIFY_LOST", NOTIFY_LOST_OPCODE],
    // The relay's write-behind (guest/fuse_wb.c).
    ["WL_FUSE_RELAY_ANSWERED", RELAY_ANSWERED_FLAG],
    ["WL_RELAY_BEHIND_DONE", RELAY_BEHIND_DONE],
    ["WL_RELAY_NODE_ATTR", RELAY_NODE_ATTR],
    ["WL_RELAY_SYNC_WRITES", RELAY_SYNC_WRITES],
    // The relay's directory cache (guest/fuse_dircache.c).
    ["WL_FUSE_LIST_DIR", LIST_DIR_OPCODE],
    ["WL_RELAY_DIR_LISTING", RelayCode.DIR_LISTING],
    ["WL_RELAY_DIR_ADD", RelayCode.DIR_ADD],
    ["WL_RELAY_DIR_REMOVE", RelayCode.DIR_REMOVE],
    ["WL_RELAY_DIR_DROP", RelayCode.DIR_DROP],
  ]);
  const snake = c.screamingSnake;
  for (const [name, value] of Object.entries(c.FrameType)) expected.set(`FT_${snake(name)}`, value);
  for (const [record, tags] of Object.entries(c.RECORD_TAGS)) {
    for (const [field, tag] of Object.entries(tags))
      expected.set(`T_${snake(record)}_${snake(field)}`, tag);
  }
  const names: [string, Record<string, Value>][] = [
    ["WL_PORT", c.PortName],
    ["WL_SERIAL", c.DiskSerial],
    ["WL_KEY", c.CmdlineKey],
    ["WL_ATTRIBUTION_KIND", c.AttributionKind],
    ["WL_ATTRIBUTION_STATE", c.AttributionState],
  ];
  for (const [prefix, table] of names) {
    for (const [name, value] of Object.entries(table))
      expected.set(`${prefix}_${snake(name)}`, value);
  }
  return expected;
}

const header = parseHeader(readFileSync(new URL("../../guest/proto.h", import.meta.url), "utf8"));

test("guest/proto.h and src/channel/contract.ts define the same numbers and names", () => {
  assert.deepEqual(
    Object.fromEntries([...header].sort(([a], [b]) => a.localeCompare(b))),
    Object.fromEntries([...expectedHeader(contract)].sort(([a], [b]) => a.localeCompare(b))),
  );
});

test("the parser reads every form proto.h uses, and no comment", () => {
  const parsed = parseHeader(
    [
      "/* #define IN_COMMENT 1 */",
      "#define WL_X 262144u",
      "#define WL_Y 0x57u",
      '#define WL_NAME "wheellock.ctl"',
      "enum t {",
      "\tFT_A = 0x1A,",
      "};",
    ].join("\n"),
  );
  assert.deepEqual(Object.fromEntries(parsed), {
    WL_X: 262144,
    WL_Y: 0x57,
    WL_NAME: "wheellock.ctl",
    FT_A: 0x1a,
  });
});

test("the guest sources use the names of proto.h, not their own copies", () => {
  const guest = (file: string) =>
    readFileSync(new URL(`../../guest/${file}`, import.meta.url), "utf8");
  for (const file of ["boot.c", "cmdline.c", "fuse.c", "main.c", "net.c", "port.c"]) {
    const text = guest(file);
    for (const value of [
      ...Object.values(contract.PortName),
      ...Object.values(contract.DiskSerial),
      ...Object.values(contract.CmdlineKey),
    ]) {
      assert.ok(!text.includes(`"${value}`), `${file} spells "${value}" itself`);
    }
    assert.ok(
      !text.includes("/proc/cmdline") || file === "cmdline.c",
      `${file} reads /proc/cmdline`,
    );
  }
});

test("the agent accepts every frame type the host sends (wire.c's known_host_type)", () => {
  const wire = readFileSync(new URL("../../guest/wire.c", import.meta.url), "utf8");
  const body = /static int known_host_type\(uint8_t t\)\s*\{([\s\S]*?)\n\}/.exec(wire)?.[1];
  assert.ok(body !== undefined, "wire.c has known_host_type");
  const accepted = new Set([...body.matchAll(/case (FT_\w+):/g)].map((m) => m[1]));
  // EOF travels both ways (PORT_FORWARD); every other guest type is the guest's to send.
  const hostSends = Object.entries(contract.FrameType).filter(
    ([, value]) => value === contract.FrameType.Eof || !contract.GUEST_FRAME_TYPES.has(value),
  );
  for (const [name] of hostSends) {
    const ft = `FT_${contract.screamingSnake(name)}`;
    assert.ok(accepted.has(ft), `the agent refuses ${ft}, which the host sends`);
  }
});
