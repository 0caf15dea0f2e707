/**
 * `buildImage`: a Dockerfile built with wheellock sandboxes. Parse, plan the stages the target
 * needs, build them in order (each RUN an ordinary sandbox, COPY/ADD on the host, every layer
 * checked and cached), then store the image like a pulled one. All scratch (root disks, kept
 * sandbox disks, unpacked archives) lives in one directory under the image store's tmp/,
 * removed when the build ends however it ends (a crashed build's is removed by the next
 * `image prune` or flatten, which sweep dead processes' scratch).
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { dataDir, makePrivateDir } from "../paths.js";
import { ErrBuild } from "../errors.js";
import { ImageStore, formatPlatform, DEFAULT_PLATFORM } from "../image/index.js";
import { loadInterceptModules } from "../net/index.js";
import type { BuildRun } from "./build-run.js";
import { BuildCache } from "./cache.js";
import { exportImage, imageDocs, storeImage } from "./commit.js";
import { BuildContext } from "./context.js";
import { parseDockerfile } from "./dockerfile/parse.js";
import { RootDisks } from "./fs/root-disks.js";
import { certificateNeedles, type Needle } from "./layer/scanner.js";
import type { BuildOptions, BuildResult } from "./options.js";
import { globalArgValues, planBuild } from "./plan.js";
import { silentBuildProgress } from "./progress.js";
import { buildStage } from "./stage-run.js";

const PLATFORM_ARGS: Record<string, string> = {
  TARGETPLATFORM: "linux/amd64",
  TARGETOS: "linux",
  TARGETARCH: "amd64",
  TARGETVARIANT: "",
  BUILDPLATFORM: "linux/amd64",
  BUILDOS: "linux",
  BUILDARCH: "amd64",
  BUILDVARIANT: "",
};

function epochOf(opts: BuildOptions): number {
  const fromEnv = process.env.SOURCE_DATE_EPOCH;
  const epoch =
    opts.sourceDateEpoch ?? (fromEnv !== undefined && fromEnv !== "" ? Number(fromEnv) : 0);
  if (!Number.isSafeInteger(epoch) || epoch < 0)
    throw new ErrBuild(`sourceDateEpoch must be a whole number of seconds >= 0, got ${epoch}`);
  return epoch;
}

export async function buildImage(opts: BuildOptions): Promise<BuildResult> {
  if (opts.platform !== undefined && opts.platform !== formatPlatform(DEFAULT_PLATFORM))
    throw new ErrBuild(`--platform ${opts.platform}: only linux/amd64 images can be built`);
  const tags = opts.tags ?? [];
  if (tags.length === 0 && !opts.output)
    throw new ErrBuild("nothing to do: give a tag (-t NAME[:TAG]) or an --output");
  const contextDir = resolve(opts.context);
  const dockerfilePath = resolve(opts.dockerfile ?? join(contextDir, "Dockerfile"));
  const text =
    opts.dockerfileText ??
    (await readFile(dockerfilePath, "utf8").catch(() => {
      throw new ErrBuild(`cannot read the Dockerfile ${dockerfilePath}`);
    }));
  const parsed = parseDockerfile(text);
  const buildArgs = opts.buildArgs ?? {};
  const plan = planBuild(
    parsed,
    (globals) => globalArgValues(globals, buildArgs, PLATFORM_ARGS),
    opts.target,
  );
  const store = opts.store ?? new ImageStore();
  const epoch = epochOf(opts);
  const secrets = opts.secrets ?? {};
  const needles: Needle[] = Object.entries(secrets)
    .filter(([, s]) => s.value !== "")
    .map(([id, s]) => ({ label: `the value of secret "${id}"`, bytes: Buffer.from(s.value) }));
  const intercepts =
    (opts.allowHosts ?? []).length > 0 ||
    Object.values(secrets).some((s) => (s.hosts ?? []).length > 0);
  let caPem: Promise<string> | undefined;
  const loadCa = (): Promise<string> => {
    caPem ??= loadInterceptModules().then(
      async ({ loadOrCreateCa }) => (await loadOrCreateCa(join(dataDir(), "ca"))).certPem,
    );
    return caPem;
  };
  if (intercepts)
    needles.push(...certificateNeedles("the wheellock intercept CA certificate", await loadCa()));

  makePrivateDir(join(store.root, "tmp"));
  const scratchDir = await mkdtemp(join(store.root, "tmp", `build-${process.pid}-`));
  const disks = new RootDisks(scratchDir);
  const controller = new AbortController();
  const abort = (): void => controller.abort();
  opts.signal?.addEventListener("abort", abort, { once: true });
  if (opts.signal?.aborted) controller.abort();
  let context: Promise<BuildContext> | undefined;
  const run: BuildRun = {
    plan,
    store,
    cache: new BuildCache(opts.cacheDir),
    disks,
    scratchDir,
    context: () => (context ??= BuildContext.open(contextDir, `${dockerfilePath}.dockerignore`)),
    buildArgs,
    globalArgValues: globalArgValues(plan.globalArgs, buildArgs, PLATFORM_ARGS),
    consumedArgs: new Set([...plan.globalArgs.map(([n]) => n), ...Object.keys(PLATFORM_ARGS)]),
    noCache: opts.noCache === true,
    mtimeClampSec: epoch,
    createdIso: new Date(epoch * 1000).toISOString().replace(/\.000Z$/, "Z"),
    needles,
    sandbox: {
      ...(opts.cpus !== undefined ? { cpus: opts.cpus } : {}),
      ...(opts.memoryMb !== undefined ? { memoryMb: opts.memoryMb } : {}),
      ...(opts.diskSizeMb !== undefined ? { diskSizeMb: opts.diskSizeMb } : {}),
      allowHosts: opts.allowHosts ?? [],
      allowPrivateHosts: opts.allowPrivateHosts === true,
      secrets,
      caPem: loadCa,
    },
    urlPolicy: {
      allowHosts: opts.allowHosts ?? [],
      allowPrivateHosts: opts.allowPrivateHosts === true,
    },
    progress: opts.progress ?? silentBuildProgress,
    signal: controller.signal,
    results: new Map(),
    stepNo: 0,
    stepsRun: 0,
    stepsCached: 0,
  };
  try {
    for (const index of plan.order) {
      const stage = plan.stages[index];
      if (stage) run.results.set(index, await buildStage(run, stage));
    }
    const unused = Object.keys(buildArgs).filter((a) => !run.consumedArgs.has(a));
    if (unused.length > 0)
      run.progress.note(`warning: build args not consumed by the Dockerfile: ${unused.join(", ")}`);
    const target = run.results.get(plan.order[plan.order.length - 1] as number);
    if (!target) throw new ErrBuild("no stage was built");
    const docs = imageDocs(target.fs, target.config, run.createdIso, needles);
    if (controller.signal.aborted) throw new ErrBuild("build interrupted");
    const records =
      tags.length > 0
        ? await storeImage(store, tags, docs, target.fs, target.config, disks, run.createdIso)
        : [];
    if (opts.output) {
      await exportImage(opts.output.type, resolve(opts.output.dest), docs, target.fs, tags);
      run.progress.note(`wrote ${opts.output.type} archive ${opts.output.dest}`);
    }
    return {
      references: records.map((r) => r.reference),
      digest: docs.digest,
      configDigest: docs.configDigest,
      ...(records[0] ? { record: records[0] } : {}),
      stepsRun: run.stepsRun,
      stepsCached: run.stepsCached,
    };
  } finally {
    opts.signal?.removeEventListener("abort", abort);
    await disks.close();
    await rm(scratchDir, { recursive: true, force: true });
  }
}
