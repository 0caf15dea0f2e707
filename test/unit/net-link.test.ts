import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildArpRequest } from "../../src/net/arp.js";
import { FrameDecoder, encodeFrame } from "../../src/net/frame-codec.js";
import { NetworkLink } from "../../src/net/link-server.js";
import {
  FakeUpstream,
  GUEST_MAC,
  PUBLIC_IP,
  addressing,
  guestUdp,
  makeStack,
} from "./net-fake-guest.js";

function dial(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path, () => resolve(s));
    s.once("error", reject);
  });
}

test("link: QEMU's length-prefixed frames in, replies out; only one client is served", async () => {
  const dir = mkdtempSync(join(tmpdir(), "wl-link-"));
  const path = join(dir, "net.sock");
  const link = await NetworkLink.listen(path, { upstream: new FakeUpstream() });
  try {
    const qemu = await dial(path);
    const frames: Buffer[] = [];
    const decoder = new FrameDecoder((f) => frames.push(Buffer.from(f)));
    qemu.on("data", (c: Buffer) => decoder.push(c));
    const request = encodeFrame(
      buildArpRequest(GUEST_MAC, addressing.guestIp, addressing.gatewayIp),
    );
    // Split mid-header and mid-frame, as a stream may deliver it.
    qemu.write(request.subarray(0, 2));
    qemu.write(request.subarray(2, 20));
    qemu.write(request.subarray(20));
    for (let i = 0; i < 100 && frames.length === 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(frames.length, 1);
    assert.equal(frames[0]?.readUInt16BE(12), 0x0806);
    // Nobody else can join the link.
    const intruder = await dial(path).catch(() => undefined);
    if (intruder) {
      await new Promise<void>((r) => intruder.once("close", () => r()).resume());
    }
    qemu.destroy();
  } finally {
    link.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("UDP replies are dropped, not queued, while the link is congested", () => {
  let writable = true;
  const { stack, upstream, out } = makeStack({ linkWritable: () => writable });
  stack.handleFrame(guestUdp(PUBLIC_IP, 40000, 9, Buffer.from("x")));
  writable = false;
  for (let i = 0; i < 100; i++) upstream.udp[0]?.events.onMessage(Buffer.alloc(1000));
  assert.equal(out.length, 0);
  writable = true;
  upstream.udp[0]?.events.onMessage(Buffer.alloc(1000));
  assert.equal(out.length, 1);
  stack.close();
});
