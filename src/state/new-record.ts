import type { ResolvedSandboxConfig } from "../config/index.js";
import { processStartTicks } from "../util/index.js";
import type { PortBinding, SandboxRecord } from "./record.js";

/**
 * The first record of a long-lived sandbox owned by this process (a supervisor, or an rpc
 * session): names of env vars and secrets only, never their values.
 */
export function newRecord(
  config: ResolvedSandboxConfig,
  opts: { status: SandboxRecord["status"]; ports: PortBinding[]; gracefulShutdownMs: number },
): SandboxRecord {
  const now = new Date().toISOString();
  return {
    id: config.id,
    image: config.image,
    status: opts.status,
    supervisorPid: process.pid,
    supervisorStartTicks: processStartTicks(process.pid) ?? 0,
    createdAt: now,
    updatedAt: now,
    ports: opts.ports,
    config: {
      cpus: config.cpus,
      memoryMb: config.memoryMb,
      diskSizeMb: config.diskSizeMb,
      timeoutSeconds: config.timeoutSeconds,
      hostname: config.hostname,
      ...(config.workdir !== undefined ? { workdir: config.workdir } : {}),
      ...(config.user !== undefined ? { user: config.user } : {}),
      privileged: config.privileged,
      accel: config.accel,
      envNames: Object.keys(config.env).sort(),
      // Names only: secret values never reach a record.
      network: {
        intercept: config.networkIntercept,
        allowedHosts: [...config.allowedHosts],
        secretNames: config.secrets.map((s) => s.name),
      },
      gracefulShutdownMs: opts.gracefulShutdownMs,
    },
  };
}
