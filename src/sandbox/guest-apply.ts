/**
 * What a sandbox's guest gets right after a boot or a restore, the same on both paths: what
 * a memory snapshot must never hold (it is saved before any of this reaches the guest).
 */
import type { GuestAgent } from "../channel/index.js";
import { ErrInvalidConfig } from "../errors.js";
import { configureGuest } from "./guest-config.js";
import { applyGuestNetworkSetup, type GuestNetworkSetup } from "./guest-network-setup.js";

export interface GuestSettingsToApply {
  hostname: string;
  /** Guest paths the FUSE port serves (FuseMounts.guestPaths); none: no MOUNT sent. */
  mountPaths: readonly string[];
  /** Extra disk i at `disks[i]` (SandboxDisks.guestMounts); none: no DISK_MOUNT sent. */
  disks: readonly { guestPath: string; readonly: boolean }[];
  networkSetup: GuestNetworkSetup;
  /**
   * The VM was restored: its first request, CONFIGURE, was already sent by the boot (its
   * reply proves the restored agent runs, boot.ts), so it is not repeated here.
   */
  configured: boolean;
}

/**
 * CONFIGURE (token, clock, entropy, hostname), DISK_MOUNT (the sandbox's own disks, probed
 * afresh: a restored guest knew only its snapshot's placeholders), MOUNT (fresh FUSE session:
 * the guest sees the host files as they are now), NETWORK_SETUP (intercept CA, --add-host lines). Everything
 * else of a sandbox (network policy, secrets, env, user, workdir) lives on the host and
 * never enters the guest's memory. The order matters: CONFIGURE first (session token).
 */
export async function applyGuestSettings(
  agent: GuestAgent,
  settings: GuestSettingsToApply,
): Promise<void> {
  if (!settings.configured) await configureGuest(agent, settings.hostname);
  if (settings.disks.length > 0)
    await mountDisksWithin(agent, settings.disks, DISK_MOUNT_TIMEOUT_MS);
  if (settings.mountPaths.length > 0)
    await mountWithin(agent, settings.mountPaths, MOUNT_TIMEOUT_MS);
  await applyGuestNetworkSetup(agent, settings.networkSetup);
}

/** How long the guest's binds may wait for host replies before the start fails. */
const MOUNT_TIMEOUT_MS = 30_000;

/** How long probing and mounting the extra disks (a journal replay included) may take. */
const DISK_MOUNT_TIMEOUT_MS = 60_000;

/**
 * DISK_MOUNT, failing the start if it errs or takes longer than `timeoutMs`: the agent probes
 * and mounts on its main thread, and nothing in the guest ends a mount that never returns.
 */
export async function mountDisksWithin(
  agent: GuestAgent,
  disks: readonly { guestPath: string; readonly: boolean }[],
  timeoutMs: number,
): Promise<void> {
  await stepWithin(agent.mountDisks(disks), timeoutMs, "disks", "disks did not finish mounting");
}

/**
 * MOUNT, failing the start if it errs or takes longer than `timeoutMs`: the agent makes the
 * binds on its main thread while its relay thread carries their requests, so nothing in the
 * guest would end a MOUNT whose requests the host never answered.
 */
export async function mountWithin(
  agent: GuestAgent,
  paths: readonly string[],
  timeoutMs: number,
): Promise<void> {
  await stepWithin(agent.mount(paths), timeoutMs, "mounts", "mounts did not finish");
}

/**
 * One step of the start's guest settings: its error, or `timeoutMessage` once `timeoutMs`
 * passed without an answer, fails the start as ErrInvalidConfig("`what`: ...").
 */
async function stepWithin(
  step: Promise<void>,
  timeoutMs: number,
  what: string,
  timeoutMessage: string,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(timeoutMessage)), timeoutMs);
  });
  try {
    await Promise.race([step, timedOut]);
  } catch (err) {
    throw new ErrInvalidConfig(`${what}: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}
