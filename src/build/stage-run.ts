/**
 * One stage, instruction by instruction: its base (an image, `scratch`, an earlier stage),
 * then each instruction's effect on the config (config-instructions.ts) or on the filesystem
 * (fs-steps.ts). Every instruction extends the cache chain, so a step's key covers everything
 * before it in its stage, and its base.
 */
import { ErrBuild } from "../errors.js";
import { ensureImage, formatPlatform, DEFAULT_PLATFORM } from "../image/index.js";
import { checkAborted, type BuildRun, type StageResult } from "./build-run.js";
import { stepKey } from "./cache.js";
import { StageConfig } from "./config.js";
import { applyConfigInstruction, type StageVars } from "./config-instructions.js";
import type { RawInstruction } from "./dockerfile/parse.js";
import type { FsState } from "./fs/root-disks.js";
import { copyStep, runInstruction, workdirStep } from "./fs-steps.js";
import type { Stage } from "./plan.js";

export async function buildStage(run: BuildRun, stage: Stage): Promise<StageResult> {
  checkAborted(run);
  let { fs, config, chain } = await stageBase(run, stage);
  config = config.clone();
  const vars: StageVars = { args: new Map(), cmdSetHere: false };
  const total = stage.instructions.length;
  const name = stage.name ?? `stage-${stage.index}`;
  for (const [i, ins] of stage.instructions.entries()) {
    checkAborted(run);
    const label = `[${name} ${i + 1}/${total}] ${ins.keyword} ${ins.args.trim()}`;
    const before = chain;
    chain = stepKey([before, ins.keyword, ins.flags, ins.args, ins.heredocs]);
    const history = (emptyLayer: boolean): void => {
      config.history.push({
        created: run.createdIso,
        created_by: `${ins.keyword} ${ins.args.trim()}`.slice(0, 4096),
        comment: "wheellock build",
        ...(emptyLayer ? { empty_layer: true } : {}),
      });
    };
    const ctx = { run, ins, label, config, vars, stageIndex: stage.index };
    if (ins.keyword === "RUN" || ins.keyword === "COPY" || ins.keyword === "ADD") {
      const r =
        ins.keyword === "RUN"
          ? await runInstruction(ctx, fs, before)
          : await copyStep(ctx, fs, before);
      chain = r.chain;
      history(r.fs === fs);
      fs = r.fs;
      continue;
    }
    applyConfigInstruction(run, ins, config, vars);
    if (ins.keyword === "WORKDIR") {
      const next = await workdirStep(ctx, fs, chain);
      history(next === fs);
      fs = next;
      continue;
    }
    history(true);
  }
  return { fs, config, chain };
}

async function stageBase(run: BuildRun, stage: Stage): Promise<StageResult> {
  if (stage.baseStage !== undefined) {
    const r = run.results.get(stage.baseStage);
    if (!r) throw new ErrBuild(`stage ${stage.baseStage} was not built`);
    return r;
  }
  const want = formatPlatform(DEFAULT_PLATFORM);
  if (stage.platform !== undefined && stage.platform !== want)
    throw new ErrBuild(
      `Dockerfile line ${stage.fromLine}: FROM --platform=${stage.platform}: only ${want} images can be built (the sandboxes are ${want})`,
      { line: stage.fromLine },
    );
  if (stage.base.toLowerCase() === "scratch") {
    const fs: FsState = { layers: [] };
    return { fs, config: new StageConfig(), chain: stepKey(["FROM scratch"]) };
  }
  const { record, ext4Path } = await ensureImage(stage.base, { store: run.store }).catch(
    (err: Error) => {
      throw new ErrBuild(`Dockerfile line ${stage.fromLine}: FROM ${stage.base}: ${err.message}`, {
        line: stage.fromLine,
      });
    },
  );
  const json = JSON.parse(
    (await run.store.blobs.read(record.configDigest)).toString("utf8"),
  ) as Record<string, unknown>;
  const diffIds = ((json.rootfs as { diff_ids?: string[] } | undefined)?.diff_ids ??
    []) as string[];
  const fs: FsState = {
    layers: record.layers.map((d, i) => ({
      digest: d.digest,
      diffId: diffIds[i] ?? "",
      sizeBytes: d.size,
      mediaType: d.mediaType,
      blobPath: run.store.blobs.path(d.digest),
    })),
    ext4: ext4Path,
  };
  return {
    fs,
    config: StageConfig.fromImageConfig(json),
    chain: stepKey(["FROM", record.configDigest]),
  };
}

export type { RawInstruction };
