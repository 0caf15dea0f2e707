/**
 * What one build shares between its stages and steps: options, the cache, the root disks,
 * the scratch directory, step numbering, and the layer commit that every filesystem step ends
 * with (write the layer, check it by flattening, then record it in the cache).
 */
import { ErrBuild, WheellockError } from "../errors.js";
import type { ImageStore } from "../image/index.js";
import type { BuildCache } from "./cache.js";
import type { BuildContext } from "./context.js";
import type { StageConfig } from "./config.js";
import type { BuildPlan } from "./plan.js";
import type { BuildProgress } from "./progress.js";
import type { FsLayer, FsState, RootDisks } from "./fs/root-disks.js";
import type { LayerEntry } from "./layer/entry.js";
import { LAYER_MEDIA_TYPE, writeLayer } from "./layer/layer-file.js";
import type { Needle } from "./layer/scanner.js";
import type { RunSandboxSettings } from "./steps/run.js";
import type { UrlPolicy } from "./steps/add-url.js";

export interface StageResult {
  fs: FsState;
  config: StageConfig;
  /** Cache chain key after the stage's last instruction. */
  chain: string;
}

export interface BuildRun {
  plan: BuildPlan;
  store: ImageStore;
  cache: BuildCache;
  disks: RootDisks;
  scratchDir: string;
  context: () => Promise<BuildContext>;
  buildArgs: Readonly<Record<string, string>>;
  /** Global ARG values (for stages that redeclare them) and the platform ARGs. */
  globalArgValues: ReadonlyMap<string, string>;
  consumedArgs: Set<string>;
  noCache: boolean;
  mtimeClampSec: number;
  createdIso: string;
  needles: Needle[];
  sandbox: RunSandboxSettings;
  urlPolicy: UrlPolicy;
  progress: BuildProgress;
  signal: AbortSignal;
  results: Map<number, StageResult>;
  stepNo: number;
  stepsRun: number;
  stepsCached: number;
}

export function checkAborted(run: BuildRun): void {
  if (run.signal.aborted) throw new ErrBuild("build interrupted");
}

/** Runs a step with its progress lines; errors name the step. */
export async function step<T>(
  run: BuildRun,
  label: string,
  body: (stepNo: number) => Promise<T>,
): Promise<T> {
  checkAborted(run);
  const n = ++run.stepNo;
  const started = Date.now();
  run.progress.start(n, label);
  try {
    const out = await body(n);
    return out;
  } catch (err) {
    run.progress.failed(n, Date.now() - started);
    if (run.signal.aborted) throw new ErrBuild("build interrupted");
    throw err;
  }
}

/**
 * Writes a step's layer, checks it (flattening the new state with the pulled-layer rules),
 * and records it in the cache under `key`. Returns the new filesystem state.
 */
export async function commitLayer(
  run: BuildRun,
  fs: FsState,
  entries: readonly LayerEntry[],
  key: string,
  what: string,
): Promise<FsState> {
  if (entries.length === 0) {
    await run.cache.put({ key });
    return fs;
  }
  const written = await writeLayer(entries, {
    blobDir: run.cache.blobDir,
    needles: run.needles,
    what,
    // Sparse files count in full; four times the sandbox disk is more than any honest step.
    maxBytes: (run.sandbox.diskSizeMb ?? 5120) * 4 * 1024 * 1024,
  });
  const next = withLayer(run, fs, written);
  try {
    await run.disks.ext4(next);
  } catch (err) {
    if (err instanceof WheellockError && err.code !== "ErrImage") throw err;
    throw new ErrBuild(`${what}: ${(err as Error).message}`);
  }
  await run.cache.put({
    key,
    layer: { digest: written.digest, diffId: written.diffId, sizeBytes: written.sizeBytes },
  });
  return next;
}

export function withLayer(
  run: BuildRun,
  fs: FsState,
  layer: { digest: string; diffId: string; sizeBytes: number },
): FsState {
  const l: FsLayer = {
    ...layer,
    mediaType: LAYER_MEDIA_TYPE,
    blobPath: run.cache.blobPath(layer.digest),
  };
  return { layers: [...fs.layers, l] };
}
