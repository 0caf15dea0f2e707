/** `GET /v1/info`: what a client needs to place a sandbox on the freer of two nodes. */
import { availableParallelism, freemem, totalmem } from "node:os";
import { listSnapshotKeys } from "../sandbox/index.js";
import { detectAccel } from "../vmm/index.js";
import { holdsResources, type SandboxHost } from "./host.js";

export interface NodeInfo {
  node: string;
  version: string;
  /** What sandboxes on this node run on, and why. */
  accelerator: { kind: "kvm" | "tcg"; reason: string };
  vcpus: { total: number; free: number };
  memory: { totalBytes: number; freeBytes: number };
  /** Keys of the memory snapshots held (a sandbox with a matching boot starts from one). */
  snapshotKeys: string[];
  sandboxes: { running: number; max: number };
  /** True for `serve --single` (one sandbox, no create). */
  single: boolean;
}

const MIB = 1024 * 1024;

export function nodeInfo(
  host: SandboxHost,
  node: { id: string; version: string; maxSandboxes: number; single: boolean },
): NodeInfo {
  const live = host.list().filter((s) => holdsResources(s.status));
  const total = availableParallelism();
  const reservedBytes = live.reduce((sum, s) => sum + s.memoryMb * MIB, 0);
  const accel = detectAccel("auto");
  return {
    node: node.id,
    version: node.version,
    accelerator: { kind: accel.accel, reason: accel.reason },
    vcpus: { total, free: Math.max(0, total - live.reduce((sum, s) => sum + s.vcpus, 0)) },
    memory: {
      totalBytes: totalmem(),
      // What is free now, less what running guests may still touch of their RAM.
      freeBytes: Math.max(0, Math.min(freemem(), totalmem() - reservedBytes)),
    },
    snapshotKeys: listSnapshotKeys(),
    sandboxes: { running: live.length, max: node.maxSandboxes },
    single: node.single,
  };
}
