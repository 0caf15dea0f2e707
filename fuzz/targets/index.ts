/** Every fuzz target, loaded on demand (a worker imports only the one it runs). */
import type { FuzzTarget } from "../target.js";

const loaders: Record<string, () => Promise<FuzzTarget>> = {
  "channel-frames": async () => (await import("./channel-frames.js")).channelFrames,
  channel: async () => (await import("./channel.js")).channelTarget,
  fuse: async () => (await import("./fuse.js")).fuseTarget,
  net: async () => (await import("./net.js")).netTarget,
  dns: async () => (await import("./dns.js")).dnsTarget,
  "tls-sniff": async () => (await import("./tls-sniff.js")).tlsSniffTarget,
  http: async () => (await import("./http.js")).httpTarget,
};

export const TARGET_NAMES: readonly string[] = Object.keys(loaders);

export async function loadTarget(name: string): Promise<FuzzTarget> {
  if (name.startsWith("selftest-")) {
    const target = (await import("./selftest.js")).selftestTargets[name];
    if (target) return target;
  }
  const load = loaders[name];
  if (!load) throw new Error(`unknown fuzz target "${name}" (have: ${TARGET_NAMES.join(", ")})`);
  return load();
}
