/** Test helpers for cache invalidation: a served FakeKernel and a parser of what it was sent. */
import assert from "node:assert/strict";
import { Duplex, PassThrough } from "node:stream";
import { FuseServer, MemoryProvider, type FuseServerOptions } from "../../src/vfs/index.js";
import { NotifyCode, RELAY_NODE_ATTR } from "../../src/vfs/fuse-constants.js";
import { FLUSH_DELAY_MS } from "../../src/vfs/fuse-notify.js";
import { setTimeout as sleep } from "node:timers/promises";
import { FakeKernel } from "./vfs-fake-kernel.js";

export interface Notification {
  code: number;
  nodeid?: bigint;
  parent?: bigint;
  name?: string;
  offset?: bigint;
  length?: bigint;
}

/**
 * Parses what the server wrote to the guest: only unique-0 notifications are expected, and
 * the directory attributes pushed to the relay (RELAY_NODE_ATTR, not for the kernel), skipped.
 */
export function parse(bytes: Buffer): Notification[] {
  const out: Notification[] = [];
  for (let at = 0; at < bytes.length;) {
    const len = bytes.readUInt32LE(at);
    assert.ok(len >= 16 && at + len <= bytes.length, "length field covers the message exactly");
    assert.equal(bytes.readBigUInt64LE(at + 8), 0n, "unique 0: a notification");
    const code = bytes.readInt32LE(at + 4);
    const body = bytes.subarray(at + 16, at + len);
    if (code === RELAY_NODE_ATTR) {
      at += len;
      continue;
    }
    if (code === NotifyCode.INVAL_INODE) {
      assert.equal(body.length, 24);
      out.push({
        code,
        nodeid: body.readBigUInt64LE(0),
        offset: body.readBigInt64LE(8),
        length: body.readBigInt64LE(16),
      });
    } else if (code === NotifyCode.INVAL_ENTRY) {
      const namelen = body.readUInt32LE(8);
      assert.equal(body.length, 16 + namelen + 1, "name plus its NUL");
      assert.equal(body[16 + namelen], 0);
      out.push({
        code,
        parent: body.readBigUInt64LE(0),
        name: body.toString("utf8", 16, 16 + namelen),
      });
    } else assert.fail(`unexpected notify code ${code}`);
    at += len;
  }
  return out;
}

export async function served(
  options: Partial<FuseServerOptions> = {},
): Promise<{ server: FuseServer; k: FakeKernel; sent: () => Buffer }> {
  const server = new FuseServer({ provider: new MemoryProvider(), ...options });
  const k = new FakeKernel(server);
  const guestIn = new PassThrough();
  const guestOut = new PassThrough();
  const chunks: Buffer[] = [];
  guestOut.on("data", (c: Buffer) => chunks.push(c));
  server.attach(Duplex.from({ readable: guestIn, writable: guestOut }));
  await k.init();
  return { server, k, sent: () => Buffer.concat(chunks.splice(0)) };
}

/** Waits until the server has sent what it collected (timers fire in order of expiry). */
export async function flushed(): Promise<void> {
  await sleep(FLUSH_DELAY_MS + 20);
}
