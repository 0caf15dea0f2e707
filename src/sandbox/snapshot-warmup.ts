/** What a VM does right before its snapshot is saved, so restored sandboxes start warm. */
import type { GuestAgent } from "../channel/index.js";
import { runCollected } from "./exec-collect.js";
import { DEFAULT_PATH } from "./exec-env.js";
import { ExecProcess } from "./exec-process.js";

/** A placeholder: every restored sandbox sets its own hostname right after the restore. */
const WARMUP_HOSTNAME = "wheellock-snapshot";
const WARMUP_TIMEOUT_MS = 30_000;

/**
 * Does, once, before a snapshot is saved, the guest work every sandbox does right after it
 * starts: the hostname files are rewritten (on their tmpfs, guest/config.c), and one command runs, so
 * the dynamic loader, libc and the agent's exec path sit in the saved page cache. A restored
 * guest then skips those disk reads (under TCG each is an emulated virtio request).
 *
 * Nothing here is specific to a sandbox: no clock, no entropy, a placeholder hostname that
 * CONFIGURE replaces after every restore, and a session token that no restored sandbox's
 * host accepts (each sends its own in that CONFIGURE). Failures are ignored (an image without `true` just
 * gets a less warm snapshot).
 */
export async function warmUpForSnapshot(agent: GuestAgent): Promise<void> {
  await agent.configure({ hostname: WARMUP_HOSTNAME }).catch(() => undefined);
  const proc = new ExecProcess(
    agent.exec({ argv: ["true"], env: [`PATH=${DEFAULT_PATH}`] }),
    Date.now(),
    () => undefined,
  );
  await runCollected(proc, { timeoutMs: WARMUP_TIMEOUT_MS }).catch(() => undefined);
}
