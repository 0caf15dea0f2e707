import { mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { ErrImage } from "../errors.js";
import { debugfsScript, runDebugfs } from "./debugfs-fixups.js";
import { buildExt4FromDir } from "./ext4.js";
import { applyLayerTar, decompressLayer } from "./layer-apply.js";
import {
  DEFAULT_LAYER_LIMITS,
  DecompressedBytesCap,
  freeBytes,
  layerBudget,
  type LayerLimits,
} from "./layer-limits.js";
import { RootfsTree } from "./rootfs-tree.js";
import { makePrivateDir } from "../paths.js";

export interface LayerSource {
  /** For error messages: the layer's digest. */
  name: string;
  /** The expected sha256 of the uncompressed tar (from the image config). */
  diffId: string;
  /** Size of the layer as stored (compressed): what its decompressed size is bounded by. */
  sizeBytes: number;
  /** Opens the (possibly compressed) layer; called once, in layer order. */
  open: () => Promise<Readable>;
}

export interface BuildRootfsOptions {
  layers: LayerSource[];
  /** Where scratch space goes (same filesystem as `outPath`, so the final rename is atomic). */
  workDir: string;
  outPath: string;
  /** Default: whether this process is root. False forces the debugfs ownership path. */
  asRoot?: boolean;
  /** Decompression bomb limits (default DEFAULT_LAYER_LIMITS). */
  limits?: LayerLimits;
}

/**
 * Flattens image layers into one read-only ext4 at `outPath`: applies each layer in order into
 * a staging tree (rooted: see RootfsTree), writes the tree with mkfs.ext4 -d, fixes up what mkfs
 * cannot copy with debugfs, and renames the result into place. On any failure nothing is left:
 * the staging tree and the half-written image are removed, and `outPath` never appears.
 */
export async function buildRootfsExt4(opts: BuildRootfsOptions): Promise<{ sizeBytes: number }> {
  const asRoot = opts.asRoot ?? (process.getuid?.() ?? 0) === 0;
  makePrivateDir(opts.workDir);
  const scratch = await mkdtemp(join(opts.workDir, `build-${process.pid}-`));
  const rootDir = join(scratch, "rootfs");
  const tmpImage = join(scratch, "image.ext4");
  const tree = new RootfsTree(rootDir);
  try {
    await mkdir(rootDir, { mode: 0o755 });
    for (const [index, layer] of opts.layers.entries()) {
      // Free space is measured per layer: earlier layers already took theirs.
      const budget = layerBudget(
        layer.sizeBytes,
        await freeBytes(scratch),
        opts.limits ?? DEFAULT_LAYER_LIMITS,
      );
      const cap = new DecompressedBytesCap(budget, layer.name, layer.sizeBytes);
      const tar = await decompressLayer(await layer.open(), layer.name);
      const diffId = await applyLayerTar(tar, tree, index, layer.name, cap);
      if (diffId !== layer.diffId)
        throw new ErrImage(
          `layer ${layer.name}: uncompressed digest ${diffId} does not match the image config's ${layer.diffId}`,
        );
    }
    await tree.applyMetadata(asRoot);
    const { sizeBytes } = await buildExt4FromDir(rootDir, tmpImage, {
      label: "wheellock-root",
      slackBytes: 16 * 1024 * 1024,
      slackRatio: 0.05,
    });
    const script = await debugfsScript(tree, asRoot, scratch);
    // mkfs.ext4 always makes lost+found; an image that did not have one should not grow one.
    if (!tree.nodes.has("lost+found")) script.push("rmdir /lost+found");
    await runDebugfs(tmpImage, script, join(scratch, "fixups.debugfs"));
    await rename(tmpImage, opts.outPath);
    return { sizeBytes };
  } finally {
    // Background writes must be over before the tree goes, or they could recreate files in it.
    await tree.flush().catch(() => undefined);
    await rm(scratch, { recursive: true, force: true });
  }
}
