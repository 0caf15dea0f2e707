/** CONFIGURE after a boot or restore: guest clock, hostname and fresh entropy. */
import { randomBytes } from "node:crypto";
import type { GuestAgent } from "../channel/index.js";

/**
 * CONFIGURE: sets the guest clock and hostname and mixes host entropy into the guest's RNG,
 * right after a boot or a restore (a restored VM must not repeat its snapshot siblings'
 * random numbers, nor keep the clock of the moment it was saved). The clock is read when the
 * request is sent. It also gives the agent this session's frame token (src/channel/token.ts).
 */
export async function configureGuest(agent: GuestAgent, hostname: string): Promise<void> {
  await agent.configure({ timeUnixMs: Date.now(), seed: randomBytes(32), hostname });
}
