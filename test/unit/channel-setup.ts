/** Shared setup for the channel tests: a GuestAgent wired to a FakeGuest, plus small helpers. */
import { once } from "node:events";
import type { Readable } from "node:stream";
import { GuestAgent } from "../../src/channel/index.js";
import { FrameType } from "../../src/channel/contract.js";
import { duplexPair, FakeGuest, type Program } from "./channel-fake-guest.js";

export const programs: Record<string, Program> = {
  async echo(g, s) {
    await g.write(s.id, FrameType.Stdout, Buffer.from(s.argv.slice(1).join(" ") + "\n"));
    g.exit(s.id, 0);
  },
  async split(g, s) {
    for (const [type, text] of [
      [FrameType.Stdout, "out1 "],
      [FrameType.Stderr, "err1 "],
      [FrameType.Stdout, "out2"],
      [FrameType.Stderr, "err2"],
    ] as const) {
      await g.write(s.id, type, Buffer.from(text));
    }
    g.exit(s.id, 3);
  },
  async cat(g, s) {
    await g.write(s.id, FrameType.Stdout, await g.readStdin(s.id));
    g.exit(s.id, 0);
  },
  async sleep(g, s) {
    const [, payload] = (await waitCtl(g, s.id, FrameType.Signal)) as [number, Buffer];
    g.exit(s.id, -1, payload.readUInt32BE(0));
  },
  /** flood <bytes> <frameBytes>: a byte pattern derived from the stream id. */
  async flood(g, s) {
    const data = pattern(Number(s.argv[1]), s.id);
    await g.write(s.id, FrameType.Stdout, data, Number(s.argv[2] ?? 65536));
    g.exit(s.id, 0);
  },
  async hang() {
    // never answers: for tests of what happens to pending operations
  },
};

async function waitCtl(g: FakeGuest, id: number, type: number): Promise<unknown[]> {
  for (;;) {
    const args = await once(g, `ctl:${id}`);
    if (args[0] === type) return args;
  }
}

export function pattern(bytes: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i++) out[i] = (i * 31 + seed * 7 + (i >> 10)) & 0xff;
  return out;
}

export function setup(opts: { hello?: boolean; maxUnknownFrames?: number } = {}): {
  channel: GuestAgent;
  guest: FakeGuest;
  fatals: Error[];
} {
  const [hostIo, guestIo] = duplexPair();
  const fatals: Error[] = [];
  const channel = GuestAgent.attach(hostIo, {
    onFatal: (err) => fatals.push(err),
    ...(opts.maxUnknownFrames !== undefined ? { maxUnknownFrames: opts.maxUnknownFrames } : {}),
  });
  const guest = new FakeGuest(guestIo, programs);
  if (opts.hello !== false) guest.hello();
  return { channel, guest, fatals };
}

export async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export function tick(ms = 0): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until `fn` holds, polling; fails after `ms`. */
export async function until(fn: () => boolean, what: string, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await tick(2);
  }
}
