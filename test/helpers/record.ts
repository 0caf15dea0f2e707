// A sandbox record as the state store keeps it, for tests that need records without a VM.
import type { SandboxRecord } from "../../src/state/index.js";

/** A stopped sandbox `id` with the default configuration; `patch` overrides any field. */
export function sandboxRecord(id: string, patch: Partial<SandboxRecord> = {}): SandboxRecord {
  return {
    id,
    image: "default",
    status: "stopped",
    supervisorPid: 0,
    supervisorStartTicks: 0,
    createdAt: "2026-01-01T00:00:00.000Z",
    updatedAt: "2026-01-01T00:00:00.000Z",
    ports: [],
    config: {
      cpus: 1,
      memoryMb: 512,
      diskSizeMb: 5120,
      timeoutSeconds: 0,
      hostname: id,
      privileged: false,
      accel: "auto",
      envNames: [],
    },
    ...patch,
  };
}
