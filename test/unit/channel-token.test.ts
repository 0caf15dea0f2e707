/**
 * The session token (src/channel/token.ts): a frame that does not carry the token of the
 * agent's latest CONFIGURE was written by someone else (guest root re-binding the virtio
 * console driver and opening the recreated port) and must end the session before it can
 * settle anything, e.g. a forged EXIT.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import type { Duplex } from "node:stream";
import { GuestAgent } from "../../src/channel/index.js";
import { ConfigureTag, FrameType } from "../../src/channel/contract.js";
import { FrameParser, encodeFrame, type Frame } from "../../src/channel/frame.js";
import { decodeRecord, encodeRecord, field } from "../../src/channel/record.js";
import { ErrProtocol } from "../../src/errors.js";
import { duplexPair, helloFrame, i32pair } from "./channel-fake-guest.js";
import { until } from "./channel-setup.js";

/** A guest that only records what the host sends; the test writes its frames by hand. */
function rawGuest(opts: { resumed?: boolean } = {}) {
  const [hostIo, guestIo] = duplexPair();
  const fatals: Error[] = [];
  const agent = GuestAgent.attach(hostIo, { onFatal: (e) => fatals.push(e), ...opts });
  const received: Frame[] = [];
  const parser = new FrameParser((f) => received.push({ ...f, payload: Buffer.from(f.payload) }));
  guestIo.on("data", (chunk: Buffer) => parser.push(chunk));
  return { agent, guestIo, received, fatals };
}

/** The `nth` (1-based) request of `type` the guest received, once it is there. */
async function request(
  received: Frame[],
  type: number,
  nth = 1,
): Promise<{ id: number; token: number | undefined }> {
  const ofType = () => received.filter((f) => f.type === type);
  await until(() => ofType().length >= nth, `request ${nth} of type ${type}`);
  const frame = ofType()[nth - 1] as Frame;
  return { id: frame.streamId, token: decodeRecord(frame.payload).u32(ConfigureTag.Token) };
}

const started = (id: number, token: number) =>
  encodeFrame(FrameType.Started, id, encodeRecord([field.u32(1, 7)]), token);
const exit = (id: number, code: number, token: number) =>
  encodeFrame(FrameType.Exit, id, i32pair(code, 0), token);

async function configured(guestIo: Duplex, received: Frame[], agent: GuestAgent) {
  const done = agent.configure({ hostname: "h" });
  const { id, token } = await request(received, FrameType.Configure);
  assert.ok(token !== undefined && token !== 0, "CONFIGURE carries a non-zero token");
  guestIo.write(encodeFrame(FrameType.Ok, id, Buffer.alloc(0), token));
  await done;
  return token;
}

test("a forged EXIT without the session token ends the session; the exec never sees it", async () => {
  const { agent, guestIo, received, fatals } = rawGuest();
  guestIo.write(helloFrame()); // token 0: nothing configured yet
  await agent.hello;
  const token = await configured(guestIo, received, agent);
  const proc = agent.exec({ argv: ["sleep", "100"], env: [] });
  const { id } = await request(received, FrameType.Exec);
  guestIo.write(started(id, token));
  assert.equal(await proc.started, 7);
  // The rogue writer does not know the token (0 here, as before any CONFIGURE).
  guestIo.write(exit(id, 42, 0));
  await assert.rejects(
    proc.exit,
    (e: unknown) => e instanceof ErrProtocol && /without the session token/.test(e.message),
  );
  assert.equal(fatals.length, 1);
  assert.equal(agent.closed, true);
});

test("a wrong non-zero token is refused as well", async () => {
  const { agent, guestIo, received, fatals } = rawGuest();
  guestIo.write(helloFrame());
  const token = await configured(guestIo, received, agent);
  const ping = agent.ping();
  const { id } = await request(received, FrameType.Ping);
  guestIo.write(encodeFrame(FrameType.Ok, id, Buffer.alloc(0), (token ^ 1) >>> 0));
  await assert.rejects(ping, /session token/);
  await until(() => fatals.length === 1, "onFatal");
});

test("frames sent before the agent applied a new CONFIGURE keep the old token; after it, never", async () => {
  const { agent, guestIo, received, fatals } = rawGuest();
  guestIo.write(helloFrame());
  const first = await configured(guestIo, received, agent);
  const proc = agent.exec({ argv: ["x"], env: [] });
  const { id: execId } = await request(received, FrameType.Exec);
  const second = agent.configure({ hostname: "again" });
  const { id: confId, token: next } = await request(received, FrameType.Configure, 2);
  assert.ok(next !== undefined && next !== first);
  // In flight when the agent read the CONFIGURE: still the first token, still fine.
  guestIo.write(started(execId, first));
  assert.equal(await proc.started, 7);
  guestIo.write(encodeFrame(FrameType.Ok, confId, Buffer.alloc(0), next));
  await second;
  guestIo.write(exit(execId, 0, first));
  await assert.rejects(proc.exit, /session token/);
  assert.equal(fatals.length, 1);
});

test("a restored guest's snapshot token is never accepted; its first CONFIGURE sets one", async () => {
  const stale = rawGuest({ resumed: true });
  await stale.agent.hello; // resumed: no HELLO on the wire
  const ping = stale.agent.ping();
  const { id } = await request(stale.received, FrameType.Ping);
  // Whatever the snapshot's token was (0 for a snapshot taken before any CONFIGURE).
  stale.guestIo.write(encodeFrame(FrameType.Ok, id, Buffer.alloc(0), 0));
  await assert.rejects(ping, ErrProtocol);

  const fresh = rawGuest({ resumed: true });
  const token = await configured(fresh.guestIo, fresh.received, fresh.agent);
  const ping2 = fresh.agent.ping();
  const { id: id2 } = await request(fresh.received, FrameType.Ping);
  fresh.guestIo.write(encodeFrame(FrameType.Ok, id2, Buffer.alloc(0), token));
  await ping2;
  assert.deepEqual(fresh.fatals, []);
  fresh.agent.close();
  await once(fresh.guestIo, "end").catch(() => undefined);
});
