/** CONFIGURE after a boot or restore: guest clock, hostname and fresh entropy. */
import { randomBytes } from "node:crypto";
import type { GuestAgent } from "../channel/index.js";

/**
 * CONFIGURE: sets the guest clock and hostname and mixes host entropy into the guest's RNG,
 * right after a boot or a restore (a restored VM must not repeat its snapshot siblings'
 * random numbers, nor keep the clock of the moment it was saved). The clock is read when the
 * request is sent. It also gives the agent this session's frame token (src/channel/token.ts),
 * and, last, lets the guest's processes run again if a checkpoint held them (a copy of a
 * running sandbox, and the source after its capture: see holdGuestProcesses).
 */
export async function configureGuest(agent: GuestAgent, hostname: string): Promise<void> {
  await agent.configure({
    timeUnixMs: Date.now(),
    seed: randomBytes(32),
    hostname,
    freeze: false,
  });
}

/**
 * Holds every process the guest's execs started (cgroup v2 freezer) before a checkpoint saves
 * its memory: the copies resume with them held, and they run again only at the copy's
 * CONFIGURE, after its fresh entropy (configureGuest) — none of them draws the source's
 * random numbers in between.
 */
export async function holdGuestProcesses(agent: GuestAgent): Promise<void> {
  await agent.configure({ freeze: true });
}
