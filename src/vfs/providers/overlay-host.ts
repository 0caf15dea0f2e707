/**
 * The overlay mount of `-v host:guest:overlay`: the host directory read-only below, a fresh
 * per-sandbox upper directory above, removed on close unless the caller keeps it.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { HostDirProvider, type HostDirOptions } from "./host-dir.js";
import { OverlayProvider } from "./overlay.js";
import { ReadOnlyProvider } from "./read-only.js";

export interface HostOverlayOptions extends HostDirOptions {
  /** The host directory the guest sees; never modified. */
  readonly hostPath: string;
  /** Directory under which the upper layer is created (a run dir). */
  readonly upperParentDir: string;
  /** Keep the upper layer on close (default: removed). */
  readonly keepUpper?: boolean;
}

export async function openHostOverlay(
  options: HostOverlayOptions,
): Promise<{ provider: OverlayProvider; upperDir: string }> {
  const upperDir = await mkdtemp(join(options.upperParentDir, "overlay-upper-"));
  try {
    const lower = new ReadOnlyProvider(await HostDirProvider.open(options.hostPath, options));
    const upper = await HostDirProvider.open(upperDir, options);
    const dropUpper = async (): Promise<void> => {
      if (options.keepUpper !== true) await rm(upperDir, { recursive: true, force: true });
    };
    return { provider: new OverlayProvider(lower, upper, dropUpper), upperDir };
  } catch (err) {
    await rm(upperDir, { recursive: true, force: true });
    throw err;
  }
}
