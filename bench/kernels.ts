// Issue 7: the minimal guest kernel against Debian's cloud kernel, booted by the same QEMU,
// accelerator and agent in the same run. Skipped (null) unless both kernels are prepared.
import { Sandbox } from "../src/index.js";
import { cacheDir } from "../src/paths.js";
import { prepareAssets } from "../src/setup/index.js";
import { findMinimalKernel } from "../src/setup/min-kernel.js";
import type { Accel } from "../src/vmm/index.js";
import { bareBootMs } from "./baseline-boot.js";

type Choice = "debian" | "minimal";

interface KernelFigures {
  kernel: string;
  /** The kernel with a trivial /init that powers off at once: the kernel's own boot. */
  bareBootMs: number[];
  /** QEMU spawn to the agent's HELLO (Sandbox.bootMs). */
  qemuSpawnToAgentReadyMs: number[];
  sdkCreateToFirstExecMs: number[];
}

async function measure(choice: Choice, accel: Accel, runs: number): Promise<KernelFigures> {
  // prepareAssets memoises per WHEELLOCK_GUEST_KERNEL value, so switching is cheap.
  process.env.WHEELLOCK_GUEST_KERNEL = choice;
  const assets = await prepareAssets();
  const out: KernelFigures = {
    kernel: assets.kernel.version,
    bareBootMs: [],
    qemuSpawnToAgentReadyMs: [],
    sdkCreateToFirstExecMs: [],
  };
  for (let i = 0; i < runs; i++) {
    out.bareBootMs.push(
      await bareBootMs({
        accel,
        kernelPath: assets.kernel.vmlinuzPath,
        imagePath: assets.image.ext4Path,
        memoryMb: 512,
      }),
    );
    const t = process.hrtime.bigint();
    const sb = await Sandbox.create({ snapshot: false });
    await sb.exec(["true"]);
    out.sdkCreateToFirstExecMs.push(Number(process.hrtime.bigint() - t) / 1e6);
    out.qemuSpawnToAgentReadyMs.push(sb.bootMs);
    await sb.close();
  }
  return out;
}

export async function kernelComparison(
  accel: Accel,
  log: (m: string) => void,
  runs = 3,
): Promise<Record<Choice, KernelFigures> | null> {
  if ((await findMinimalKernel(cacheDir())) === undefined) {
    log("kernel comparison skipped: no minimal kernel built (wheellock setup builds it)");
    return null;
  }
  const saved = process.env.WHEELLOCK_GUEST_KERNEL;
  try {
    log(`kernel comparison: Debian vs minimal, ${runs} bare boots + ${runs} SDK starts each`);
    // Interleaving would be fairer on a noisy machine, but one kernel after the other keeps
    // each kernel's page cache warm; the bare-boot baseline in each block absorbs the noise.
    const debian = await measure("debian", accel, runs);
    const minimal = await measure("minimal", accel, runs);
    return { debian, minimal };
  } finally {
    if (saved === undefined) delete process.env.WHEELLOCK_GUEST_KERNEL;
    else process.env.WHEELLOCK_GUEST_KERNEL = saved;
  }
}
