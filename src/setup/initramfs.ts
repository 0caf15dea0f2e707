import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, rename, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { buildCpio, type CpioEntry } from "./cpio.js";
import type { GuestKernel } from "./kernel.js";
import { makePrivateDir } from "../paths.js";

/** Bump when the layout below changes, so old cached archives are not reused. */
const LAYOUT_VERSION = "1";

/**
 * The guest's initramfs: the agent as /init plus the kernel modules it loads
 * (/lib/wheellock/modules/*.ko in /lib/wheellock/modules.order). Cached by content hash under
 * `<cacheDir>/initramfs/`; returns the archive's path.
 */
export async function ensureInitramfs(
  cacheDir: string,
  agentPath: string,
  kernel: GuestKernel,
): Promise<string> {
  const agent = await readFile(agentPath);
  const modules = await Promise.all(
    kernel.moduleFiles.map(async (f) => ({ name: basename(f), data: await readFile(f) })),
  );
  const hash = createHash("sha256");
  hash.update(`layout ${LAYOUT_VERSION}\0`);
  hash.update(agent);
  for (const m of modules) {
    hash.update(`\0${m.name}\0${m.data.length}\0`);
    hash.update(m.data);
  }
  const dir = join(cacheDir, "initramfs");
  const path = join(dir, `${hash.digest("hex").slice(0, 32)}.cpio`);
  if (existsSync(path)) return path;

  const names = modules.map((m) => m.name);
  if (new Set(names).size !== names.length)
    throw new Error(`duplicate module file names: ${names.join(" ")}`);
  const entries: CpioEntry[] = [
    // The kernel opens /dev/console for PID 1's stdio before /init runs; without the node,
    // early agent messages would go nowhere.
    { type: "dir", name: "dev", mode: 0o755 },
    { type: "chardev", name: "dev/console", mode: 0o600, major: 5, minor: 1 },
    { type: "dir", name: "proc", mode: 0o555 },
    { type: "dir", name: "sys", mode: 0o555 },
    { type: "dir", name: "mnt", mode: 0o755 },
    { type: "file", name: "init", mode: 0o755, data: agent },
    { type: "dir", name: "lib", mode: 0o755 },
    { type: "dir", name: "lib/wheellock", mode: 0o755 },
    { type: "dir", name: "lib/wheellock/modules", mode: 0o755 },
    ...modules.map((m): CpioEntry => ({
      type: "file",
      name: `lib/wheellock/modules/${m.name}`,
      mode: 0o644,
      data: m.data,
    })),
    {
      type: "file",
      name: "lib/wheellock/modules.order",
      mode: 0o644,
      data: Buffer.from(names.map((n) => `${n}\n`).join("")),
    },
  ];
  makePrivateDir(dir);
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, buildCpio(entries));
  await rename(tmp, path);
  return path;
}
