import type { Sandbox } from "../src/index.js";

const MB = 1024 * 1024;

/** Exec stdout throughput: `dd` of zeros in the guest, drained on the host (MB/s). */
export async function stdoutThroughputMBps(sb: Sandbox, bytes: number): Promise<number> {
  const started = process.hrtime.bigint();
  // Same producer as the raw-serial baseline, so the ratio measures the channel alone.
  const proc = sb.spawn(`dd if=/dev/zero bs=65536 count=${bytes / 65536} 2>/dev/null`);
  proc.stdin.end();
  let total = 0;
  for await (const chunk of proc.stdout) total += (chunk as Buffer).length;
  await proc.wait();
  if (total !== bytes) throw new Error(`stdout: got ${total} of ${bytes} bytes`);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  return bytes / MB / (ms / 1000);
}
