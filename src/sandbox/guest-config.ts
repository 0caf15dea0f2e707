import { randomBytes } from "node:crypto";
import { ConfigureTag, FrameType, field, type Channel } from "../channel/index.js";

/**
 * CONFIGURE: sets the guest clock and hostname and mixes host entropy into the guest's RNG,
 * right after a boot or a restore (a restored VM must not repeat its snapshot siblings'
 * random numbers, nor keep the clock of the moment it was saved). The clock is read when the
 * request is sent.
 */
export async function configureGuest(channel: Channel, hostname: string): Promise<void> {
  await channel.request(FrameType.Configure, [
    field.u64(ConfigureTag.TimeUnixMs, Date.now()),
    field.bytes(ConfigureTag.Seed, randomBytes(32)),
    field.string(ConfigureTag.Hostname, hostname),
  ]);
}
