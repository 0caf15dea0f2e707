// The sandbox the file-system benches measure in: a host-dir workspace at /workspace, the
// bench's inputs read-only at /opt/inputs, room on the root disk for the same work there.
import type { SandboxOptions } from "../src/index.js";

export function workspaceBenchOptions(hostDir: string, inputs: string): SandboxOptions {
  return {
    privileged: true, // drop_caches needs CAP_SYS_ADMIN
    memoryMb: 1024,
    diskSizeMb: 2048,
    timeoutSeconds: 0,
    mounts: {
      "/workspace": { type: "host_fs", hostPath: hostDir },
      "/opt/inputs": { type: "host_fs", hostPath: inputs, readonly: true },
    },
  };
}
