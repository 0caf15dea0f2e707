// Baseline for cold start: the same QEMU, kernel and devices booting a trivial /init that
// ends the VM at once. Cold start minus this is wheellock's own overhead.
import { execFileSync } from "node:child_process";
import {
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
  openSync,
  closeSync,
  truncateSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DiskSerial } from "../src/channel/index.js";
import { buildCpio } from "../src/setup/cpio.js";
import { QemuProcess, type Accel } from "../src/vmm/index.js";

export function buildPoweroffInitramfs(dir: string): string {
  const binary = join(dir, "poweroff-init");
  execFileSync("musl-gcc", [
    "-static",
    "-O2",
    "-o",
    binary,
    join(import.meta.dirname, "poweroff-init.c"),
  ]);
  const path = join(dir, "poweroff.cpio");
  writeFileSync(
    path,
    buildCpio([
      { type: "dir", name: "dev", mode: 0o755 },
      { type: "chardev", name: "dev/console", mode: 0o600, major: 5, minor: 1 },
      { type: "file", name: "init", mode: 0o755, data: readFileSync(binary) },
    ]),
  );
  return path;
}

/** Milliseconds from spawning QEMU to its exit. */
export async function bareBootMs(opts: {
  accel: Accel;
  kernelPath: string;
  imagePath: string;
  memoryMb: number;
}): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "wl-bench-"));
  try {
    const initramfsPath = buildPoweroffInitramfs(dir);
    const upper = join(dir, "upper.img");
    closeSync(openSync(upper, "w"));
    truncateSync(upper, 64 * 1024 * 1024);
    const controlSocketPath = join(dir, "ctl.sock");
    const server = createServer((s) => s.on("error", () => undefined).resume());
    await new Promise<void>((r) => server.listen(controlSocketPath, r));
    // The same launch as a sandbox's (descriptors, seccomp, jail as root), started the same way.
    const started = process.hrtime.bigint();
    const qemu = await QemuProcess.start(
      {
        accel: opts.accel,
        cpus: 1,
        memoryMb: opts.memoryMb,
        kernelPath: opts.kernelPath,
        initramfsPath,
        kernelArgs: [],
        disks: [
          { path: opts.imagePath, serial: DiskSerial.Root, readonly: true },
          { path: upper, serial: "wl-upper", readonly: false },
        ],
        controlSocketPath,
        consoleLogPath: join(dir, "console.log"),
        consoleSocketPath: join(dir, "console.sock"),
      },
      join(dir, "qemu.log"),
    );
    const { code } = await qemu.exited;
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    server.close();
    if (code !== 0) throw new Error(`baseline QEMU exited with ${code}`);
    return ms;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
