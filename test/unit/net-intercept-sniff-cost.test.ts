/**
 * The cost of recognising a flow grows with its bytes, not with their square: a guest that
 * sends its first bytes one TCP segment at a time (or a ClientHello cut into one-byte TLS
 * records, which TLS allows) must not make the host re-join and re-parse everything held on
 * every segment. Before the fix, 12 KiB held byte by byte took seconds of host CPU per flow
 * (found by `npm run fuzz -- --target tls-sniff`).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { InterceptedFlow, type FlowKind } from "../../src/net/intercept/intercepted-flow.js";
import { clientHello } from "../helpers/tls-client-hello.js";
import { cpuMsSince } from "../helpers/timing.js";

const noop = (): void => undefined;
const events = { onConnect: noop, onData: noop, onEnd: noop, onDrain: noop, onError: noop };

/**
 * Writes `bytes` one at a time; returns the classification (if any) and the CPU time taken.
 * CPU time, not wall time: on a loaded machine this process waits for a core for longer than
 * the work itself takes, and that waiting says nothing about the parser's cost.
 */
function byteByByte(bytes: Buffer): { kind: FlowKind | undefined; ms: number } {
  let kind: FlowKind | undefined;
  const flow = new InterceptedFlow(events, 60_000, (k) => (kind = k));
  const started = process.cpuUsage();
  for (let i = 0; i < bytes.length && kind === undefined; i++)
    flow.write(bytes.subarray(i, i + 1), noop);
  const ms = cpuMsSince(started);
  flow.destroy();
  return { kind, ms };
}

test("a large first flight held one byte at a time costs linear time", () => {
  // A ClientHello announcing 16 KiB in one record, then 48 KiB more of records that never
  // complete it: the flow holds up to its 64 KiB cap and gives up.
  const head = Buffer.from([0x16, 3, 1, 0x40, 0, 1, 0, 0x3f, 0xfc]);
  const { kind, ms } = byteByByte(Buffer.concat([head, Buffer.alloc(64 * 1024, 7)]));
  assert.equal(kind?.kind, "other");
  assert.ok(ms < 1500, `${Math.round(ms)} ms of CPU`);
});

test("a ClientHello in one-byte records, one byte at a time, is recognised in linear time", async () => {
  const hello = await clientHello("frag.example.com");
  const body = hello.subarray(5, 5 + hello.readUInt16BE(3));
  const records: Buffer[] = [];
  for (const byte of body) records.push(Buffer.from([0x16, 3, 1, 0, 1, byte]));
  // Padded to ~12 KiB of records with a long session id is not possible; repeat the attack
  // on several flows instead, as a guest would.
  let total = 0;
  for (let flow = 0; flow < 8; flow++) {
    const { kind, ms } = byteByByte(Buffer.concat(records));
    assert.deepEqual(kind, { kind: "tls", sni: "frag.example.com", offersH2: false });
    total += ms;
  }
  assert.ok(total < 1500, `${Math.round(total)} ms of CPU for 8 flows`);
});
