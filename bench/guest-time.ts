// Timing a guest command from inside the guest (the exec round trip stays out of the figure).
import type { Sandbox } from "../src/index.js";

/** Flushes dirty pages and drops the page, dentry and inode caches (needs a privileged VM). */
export const DROP_CACHES = "sync; echo 3 > /proc/sys/vm/drop_caches";

/** Runs a guest shell snippet and returns how long the part between the marks took, in ms. */
export async function guestMs(sb: Sandbox, setup: string, body: string): Promise<number> {
  const r = await sb.exec(
    `set -e; ${setup}; a=$(date +%s%N); ${body}; b=$(date +%s%N); echo $(( (b-a)/1000 ))`,
  );
  const us = Number(r.stdout.trim().split("\n").pop());
  if (r.exitCode !== 0 || !Number.isFinite(us)) {
    throw new Error(`guest command failed (${r.exitCode}): ${r.stderr || r.stdout}`);
  }
  return us / 1000;
}
