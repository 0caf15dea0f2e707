/**
 * The overlay mount of `-v host:guest:overlay`: the host directory read-only below, a fresh
 * per-sandbox upper directory above, under a byte and inode budget, removed on close unless
 * the caller keeps it.
 */
import { mkdtemp } from "node:fs/promises";
import { join } from "node:path";
import { removeTree } from "../../util/index.js";
import { HostDirProvider, type HostDirOptions } from "./host-dir.js";
import { OverlayProvider } from "./overlay.js";
import { QuotaProvider } from "./quota.js";
import type { VfsQuota } from "./quota-ledger.js";
import { ReadOnlyProvider } from "./read-only.js";

export interface HostOverlayOptions extends HostDirOptions {
  /** The host directory the guest sees; never modified. */
  readonly hostPath: string;
  /** Directory under which the upper layer is created (a run dir). */
  readonly upperParentDir: string;
  /** What the upper layer may hold (the guest's `df` shows it). */
  readonly quota: VfsQuota;
  /** Keep the upper layer on close (default: removed). */
  readonly keepUpper?: boolean;
}

export async function openHostOverlay(
  options: HostOverlayOptions,
): Promise<{ provider: OverlayProvider; upperDir: string }> {
  const upperDir = await mkdtemp(join(options.upperParentDir, "overlay-upper-"));
  try {
    const lower = new ReadOnlyProvider(await HostDirProvider.open(options.hostPath, options));
    // The expected identity is the lower's (the user's directory), not the new upper's.
    const { expect: _lowerOnly, ...upperOptions } = options;
    const upper = new QuotaProvider(
      await HostDirProvider.open(upperDir, upperOptions),
      options.quota,
    );
    // Whatever the guest built there (any depth, any names) goes: see removeTree.
    const dropUpper = async (): Promise<void> => {
      if (options.keepUpper !== true) await removeTree(upperDir);
    };
    return { provider: new OverlayProvider(lower, upper, dropUpper), upperDir };
  } catch (err) {
    await removeTree(upperDir);
    throw err;
  }
}
