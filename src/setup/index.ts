import { existsSync } from "node:fs";
import { isAbsolute } from "node:path";
import { ErrSetup } from "../errors.js";
import { ensureDefaultImage, type DefaultImage } from "../image/index.js";
import { cacheDir } from "../paths.js";
import { findExecutable } from "../util/index.js";
import { ensureGuestAgent } from "./agent.js";
import { ensureHostPackages, missingPackages, type HostPackage } from "./apt.js";
import { ensureInitramfs } from "./initramfs.js";
import { ensureGuestKernel, kernelFromOverride, type GuestKernel } from "./kernel.js";
import { ensureMinimalKernel, findMinimalKernel, MIN_KERNEL_PACKAGES } from "./min-kernel.js";
import { kernelSwitchNotice, startBackgroundKernelBuild } from "./kernel-background.js";

export type { GuestKernel } from "./kernel.js";
export type { DefaultImage } from "../image/index.js";
export { ensureHostPackages, type HostPackage } from "./apt.js";

export interface SetupResult {
  kernel: GuestKernel;
  initramfsPath: string;
  image: DefaultImage;
}

export interface SetupOptions {
  /** A guest kernel (vmlinuz) to use instead of Debian's cloud kernel; default $WHEELLOCK_KERNEL. */
  kernel?: string | undefined;
  log?: (m: string) => void;
  /**
   * `setup` only: build the minimal guest kernel now and wait for it (CI, images) instead of
   * in the background while Debian's kernel serves.
   */
  waitForKernel?: boolean;
}

/** What the host needs, as Debian/Ubuntu packages and the file that proves each is installed. */
export const HOST_PACKAGES: readonly HostPackage[] = [
  { pkg: "qemu-system-x86", provides: "qemu-system-x86_64" },
  { pkg: "qemu-utils", provides: "qemu-img" },
  { pkg: "e2fsprogs", provides: "mkfs.ext4" },
  { pkg: "e2fsprogs", provides: "debugfs" },
  // The guest agent is a static musl binary built from guest/ (musl-dev pulls in gcc).
  { pkg: "musl-tools", provides: "musl-gcc" },
  { pkg: "make", provides: "make" },
  { pkg: "mmdebstrap", provides: "mmdebstrap" },
  // Ubuntu hosts need Debian's keys to verify the default image's packages.
  { pkg: "debian-archive-keyring", provides: "/usr/share/keyrings/debian-archive-keyring.gpg" },
  // newuidmap: building the image without root runs in a user namespace with subuid ranges.
  { pkg: "uidmap", provides: "newuidmap" },
];

/**
 * What running sandboxes needs once the guest assets exist (a runtime image ships them built):
 * QEMU and the ext4 tools. The build-only tools (musl-gcc, make, mmdebstrap, newuidmap) are
 * checked where a build needs them, with the same "run: wheellock setup" advice.
 */
const RUNTIME_PACKAGES: readonly HostPackage[] = HOST_PACKAGES.filter((p) =>
  ["qemu-system-x86", "e2fsprogs"].includes(p.pkg),
);

/**
 * `wheellock setup`: installs missing host packages (apt, as root), then prepares the guest
 * kernel, agent, initramfs and default image. Idempotent; quick when done before.
 */
export async function runSetup(opts: SetupOptions): Promise<SetupResult> {
  const log = opts.log ?? noop;
  await ensureHostPackages(HOST_PACKAGES, log);
  if (guestKernelChoice() !== "debian") {
    // Optional: without them (no root, no such package on this distribution) the guest boots
    // Debian's kernel, only slower.
    await ensureHostPackages(MIN_KERNEL_PACKAGES, log).catch((err: unknown) =>
      log(`minimal guest kernel: ${(err as Error).message}`),
    );
  }
  return prepare(opts, log, opts.waitForKernel === true ? "build" : "background");
}

/**
 * What a sandbox calls before it boots: runSetup without installing packages (a library call must
 * not run apt). Missing host tools fail with one line pointing at `wheellock setup`. Cached per
 * process, so only the first sandbox pays for any checks beyond a few stat calls.
 */
export async function prepareAssets(opts: SetupOptions = {}): Promise<SetupResult> {
  const missing = missingPackages(RUNTIME_PACKAGES, { isProvided });
  if (missing.length > 0) {
    const what = missing.map((p) => `${p.provides} (package ${p.pkg})`).join(", ");
    throw new ErrSetup(`missing host tools: ${what}; run: wheellock setup`);
  }
  const key = `${kernelOverride(opts) ?? ""}\0${guestKernelChoice() ?? ""}`;
  const memo = memoByKernel.get(key);
  if (memo && stillThere(memo)) return memo;
  const result = await prepare(opts, opts.log ?? noop, "find");
  memoByKernel.set(key, result);
  return result;
}

const memoByKernel = new Map<string, SetupResult>();

/**
 * For the CLI, before a sandbox starts: a line on the background kernel build (progress, or
 * that sandboxes now boot the minimal kernel), or undefined — always when a kernel is forced.
 */
export async function guestKernelNotice(
  opts: Pick<SetupOptions, "kernel"> = {},
): Promise<string | undefined> {
  if (kernelOverride(opts) !== undefined || guestKernelChoice() !== undefined) return undefined;
  const dir = cacheDir();
  return kernelSwitchNotice(dir, {
    ownKernelBuilt: async () => (await findMinimalKernel(dir)) !== undefined,
  });
}

/**
 * What to do about a minimal kernel that is not built yet: compile it and wait (`setup
 * --wait`), start its build in the background and use Debian's kernel meanwhile (`setup`), or
 * only use one that is there (a sandbox start: never a multi-minute compile).
 */
type MinimalKernelMode = "build" | "background" | "find";

async function prepare(
  opts: SetupOptions,
  log: (m: string) => void,
  mode: MinimalKernelMode,
): Promise<SetupResult> {
  const dir = cacheDir();
  const override = kernelOverride(opts);
  // The image build (mmdebstrap, ~20-35 s) does not depend on the kernel/agent chain: overlap them.
  const imageP = ensureDefaultImage(dir, log);
  const bootP = (async () => {
    const kernel =
      override !== undefined ? kernelFromOverride(override) : await pickKernel(dir, log, mode);
    const agentPath = await ensureGuestAgent(dir, log);
    const initramfsPath = await ensureInitramfs(dir, agentPath, kernel);
    return { kernel, initramfsPath };
  })();
  // allSettled, so a failure on one side never leaves the other's rejection unobserved.
  const [boot, image] = await Promise.allSettled([bootP, imageP]);
  if (boot.status === "rejected") throw boot.reason;
  if (image.status === "rejected") throw image.reason;
  return { ...boot.value, image: image.value };
}

/**
 * The minimal kernel when built (faster boot), else Debian's cloud kernel.
 * WHEELLOCK_GUEST_KERNEL=debian|minimal forces one (tests, benchmarks); `minimal` builds it if
 * needed even outside setup, since the caller asked for it.
 */
async function pickKernel(
  dir: string,
  log: (m: string) => void,
  mode: MinimalKernelMode,
): Promise<GuestKernel> {
  const choice = guestKernelChoice();
  if (choice === "debian") return ensureGuestKernel(dir, log);
  if (choice === "minimal") {
    const k = await ensureMinimalKernel(dir, log);
    if (!k)
      throw new ErrSetup(
        `${GUEST_KERNEL_ENV}=minimal but the minimal kernel cannot be built here; run: wheellock setup`,
      );
    return k;
  }
  if (mode === "find") return (await findMinimalKernel(dir)) ?? ensureGuestKernel(dir, log);
  // setup keeps the Debian kernel too: it is the fallback, and the tests boot both.
  if (mode === "background") {
    const debian = await ensureGuestKernel(dir, log);
    const minimal = await findMinimalKernel(dir);
    if (minimal) return minimal;
    await startBackgroundKernelBuild(dir, log);
    return debian;
  }
  const minimalP = ensureMinimalKernel(dir, log).catch((err: unknown) => {
    // Optional: a failed build leaves the (slower) Debian kernel in use.
    log(`${(err as Error).message}; using Debian's kernel`);
    return undefined;
  });
  // allSettled, so neither side's rejection is left unobserved.
  const [debian, minimal] = await Promise.allSettled([ensureGuestKernel(dir, log), minimalP]);
  if (minimal.status === "fulfilled" && minimal.value) return minimal.value;
  if (debian.status === "rejected") throw debian.reason;
  return debian.value;
}

const GUEST_KERNEL_ENV = "WHEELLOCK_GUEST_KERNEL";

function guestKernelChoice(): "debian" | "minimal" | undefined {
  const v = process.env[GUEST_KERNEL_ENV];
  if (v === undefined || v === "" || v === "auto") return undefined;
  if (v === "debian" || v === "minimal") return v;
  throw new ErrSetup(
    `${GUEST_KERNEL_ENV} must be debian, minimal or auto, got ${JSON.stringify(v)}`,
  );
}

function kernelOverride(opts: SetupOptions): string | undefined {
  const k = opts.kernel ?? process.env.WHEELLOCK_KERNEL;
  return k !== undefined && k.length > 0 ? k : undefined;
}

function stillThere(r: SetupResult): boolean {
  return (
    existsSync(r.kernel.vmlinuzPath) && existsSync(r.initramfsPath) && existsSync(r.image.ext4Path)
  );
}

function isProvided(provides: string): boolean {
  return isAbsolute(provides) ? existsSync(provides) : findExecutable(provides) !== undefined;
}

function noop(): void {}
