/**
 * The instructions that change files: RUN (in a sandbox), COPY and ADD (on the host), and
 * WORKDIR (creates its directory when missing). Each looks its key up in the cache first;
 * a hit reuses the stored layer and boots nothing.
 */
import { createReadStream } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { join } from "node:path";
import { ErrBuild } from "../errors.js";
import { ensureImage } from "../image/index.js";
import { commitLayer, step, withLayer, type BuildRun } from "./build-run.js";
import { stepKey } from "./cache.js";
import type { StageConfig } from "./config.js";
import { lookupIn, type StageVars } from "./config-instructions.js";
import { digestSources } from "./context.js";
import { commandOf, execForm, flagsOf, flagValue } from "./dockerfile/forms.js";
import { expandHeredoc, expandWord, LexError } from "./dockerfile/lex.js";
import { lineError, type RawInstruction } from "./dockerfile/parse.js";
import type { Ext4Reader } from "./ext4/reader.js";
import { fsKey, type FsState } from "./fs/root-disks.js";
import { resolveOwner, resolveInImage } from "./fs/resolve.js";
import { stageRef } from "./plan.js";
import { archiveKind, unpackArchive } from "./steps/add-archive.js";
import { downloadUrl } from "./steps/add-url.js";
import { copyEntries, type CopyItem } from "./steps/copy-entries.js";
import { contextItems, heredocItem, stageItems } from "./steps/copy-sources.js";
import { runStep } from "./steps/run.js";
import { parseMount, parseNetwork } from "./steps/run-mounts.js";

export interface StepContext {
  run: BuildRun;
  ins: RawInstruction;
  label: string;
  config: StageConfig;
  vars: StageVars;
  stageIndex: number;
}

interface StepOutcome {
  fs: FsState;
  chain: string;
}

/** Reuses the cached layer for `key`, if any (and not --no-cache). */
async function fromCache(
  ctx: StepContext,
  fs: FsState,
  key: string,
  n: number,
): Promise<FsState | undefined> {
  if (ctx.run.noCache) return undefined;
  const hit = await ctx.run.cache.get(key);
  if (!hit) return undefined;
  ctx.run.progress.cached(n);
  ctx.run.stepsCached++;
  return hit.layer ? withLayer(ctx.run, fs, hit.layer) : fs;
}

const what = (ctx: StepContext): string => `Dockerfile line ${ctx.ins.line} (${ctx.ins.keyword})`;

export async function runInstruction(
  ctx: StepContext,
  fs: FsState,
  chain: string,
): Promise<StepOutcome> {
  const { run, ins, config, vars } = ctx;
  const flags = flagsOf(ins, ["mount", "network"], ["mount"]);
  const mounts = (flags.get("mount") ?? []).map((spec) => {
    if (!spec) throw lineError(ins.line, "RUN --mount needs a value");
    return parseMount(ins, spec, config.workdir ?? "/");
  });
  const network = parseNetwork(ins, flagValue(ins, flags, "network"));
  const argv = runArgv(ins, config.shell);
  const env: Record<string, string> = {
    ...Object.fromEntries(vars.args),
    ...Object.fromEntries(config.env),
  };
  const key = stepKey([chain, "RUN", argv, mounts, network, [...vars.args]]);
  return step(run, ctx.label, async (n) => {
    const cached = await fromCache(ctx, fs, key, n);
    if (cached) return { fs: cached, chain: key };
    const started = Date.now();
    const rootDisk = await run.disks.ext4(fs);
    const lower = await run.disks.reader(fs);
    const outcome = await runStep({
      what: what(ctx),
      line: ins.line,
      argv,
      env,
      user: config.user,
      workdir: config.workdir,
      mounts,
      network,
      rootDisk,
      lower,
      scratchDir: run.scratchDir,
      cache: run.cache,
      mtimeClampSec: run.mtimeClampSec,
      settings: run.sandbox,
      onOutput: (c) => run.progress.output(n, c),
      signal: run.signal,
    });
    let next: FsState;
    try {
      next = await commitLayer(run, fs, outcome.entries, key, what(ctx));
    } finally {
      await outcome.release();
    }
    run.stepsRun++;
    run.progress.done(n, Date.now() - started);
    return { fs: next, chain: key };
  });
}

/**
 * RUN's command: exec form as given; shell form through SHELL; a RUN that is only a heredoc
 * runs its body (a `#!` script is run as a file), and any other heredoc goes to the shell
 * whole, which reads it as its own heredoc.
 */
function runArgv(ins: RawInstruction, shell: readonly string[]): string[] {
  if (ins.heredocs.length === 0) return commandOf(ins, shell);
  const only = ins.heredocs[0];
  if (ins.heredocs.length === 1 && only && /^<<-?(["']?)[A-Za-z0-9_.-]+\1$/.test(ins.args.trim())) {
    if (only.content.startsWith("#!")) {
      // Written by the shell itself to a tmpfs file (never part of the layer), then run.
      const path = "/tmp/.wheellock-heredoc";
      const quoted = `'${only.content.replace(/'/g, `'\\''`)}'`;
      return [...shell, `printf '%s' ${quoted} > ${path} && chmod +x ${path} && exec ${path}`];
    }
    return [...shell, only.content];
  }
  return [...shell, ins.script];
}

export async function workdirStep(ctx: StepContext, fs: FsState, chain: string): Promise<FsState> {
  const { run, config } = ctx;
  const dir = config.workdir ?? "/";
  if (dir === "/") return fs;
  return step(run, ctx.label, async (n) => {
    const cached = await fromCache(ctx, fs, chain, n);
    if (cached) return cached;
    const started = Date.now();
    const lower = await run.disks.reader(fs);
    if ((await resolveInImage(lower, dir)).inode?.kind === "dir") {
      run.stepsRun++;
      run.progress.done(n, Date.now() - started);
      await run.cache.put({ key: chain });
      return fs;
    }
    const entries = await copyEntries([{ name: "", isDir: true, files: [] }], {
      what: what(ctx),
      lower,
      workdir: "/",
      dest: `${dir}/`,
      mtimeClampSec: run.mtimeClampSec,
    });
    const next = await commitLayer(run, fs, entries, chain, what(ctx));
    run.stepsRun++;
    run.progress.done(n, Date.now() - started);
    return next;
  });
}

/** COPY and ADD. */
export async function copyStep(ctx: StepContext, fs: FsState, chain: string): Promise<StepOutcome> {
  const { run, ins, config, vars } = ctx;
  const isAdd = ins.keyword === "ADD";
  const flags = flagsOf(
    ins,
    isAdd ? ["chown", "chmod", "link", "checksum"] : ["from", "chown", "chmod", "link"],
  );
  const lookup = lookupIn(config, vars);
  const expand = (w: string): string => {
    try {
      return expandWord(w, run.plan.escape, lookup);
    } catch (err) {
      throw err instanceof LexError ? lineError(ins.line, err.message) : err;
    }
  };
  const words = execForm(ins.args) ?? ins.args.trim().split(/\s+/).map(expand);
  if (words.length < 2)
    throw lineError(ins.line, `${ins.keyword} needs a source and a destination`);
  const dest = words[words.length - 1] as string;
  const sources = words.slice(0, -1);
  const chown = flagValue(ins, flags, "chown");
  const chmodText = flagValue(ins, flags, "chmod");
  if (chmodText !== undefined && !/^[0-7]{3,4}$/.test(chmodText))
    throw lineError(
      ins.line,
      `${ins.keyword} --chmod=${chmodText}: only octal modes are supported`,
    );
  const from = flagValue(ins, flags, "from");
  const checksum = flagValue(ins, flags, "checksum");
  return step(run, ctx.label, async (n) => {
    const started = Date.now();
    const work = await mkdtemp(join(run.scratchDir, "copy-"));
    const { items, digest } = await copyItems(
      ctx,
      sources,
      from === undefined ? undefined : expand(from),
      work,
      checksum,
    );
    const key = stepKey([
      chain,
      ins.keyword,
      sources,
      dest,
      chown ?? "",
      chmodText ?? "",
      digest,
      config.workdir ?? "/",
    ]);
    const cached = await fromCache(ctx, fs, key, n);
    if (cached) return { fs: cached, chain: key };
    const lower = await run.disks.reader(fs);
    const entries = await copyEntries(items, {
      what: what(ctx),
      lower,
      workdir: config.workdir ?? "/",
      dest,
      ...(chown !== undefined
        ? { owner: await resolveOwner(lower, expand(chown), what(ctx)) }
        : {}),
      ...(chmodText !== undefined ? { mode: Number.parseInt(chmodText, 8) } : {}),
      mtimeClampSec: run.mtimeClampSec,
    });
    const next = await commitLayer(run, fs, entries, key, what(ctx));
    run.stepsRun++;
    run.progress.done(n, Date.now() - started);
    return { fs: next, chain: key };
  });
}

async function copyItems(
  ctx: StepContext,
  sources: string[],
  from: string | undefined,
  work: string,
  checksum: string | undefined,
): Promise<{ items: CopyItem[]; digest: unknown }> {
  const { run, ins } = ctx;
  const w = what(ctx);
  const heredocs = new Map(ins.heredocs.map((h) => [h.name, h]));
  const items: CopyItem[] = [];
  const digests: unknown[] = [];
  const lookup = lookupIn(ctx.config, ctx.vars);
  const fromContext: string[] = [];
  for (const s of sources) {
    const m = /^<<-?(["']?)([A-Za-z0-9_.-]+)\1$/.exec(s);
    const h = m ? heredocs.get(m[2] as string) : undefined;
    if (h) {
      const body = h.expand ? expandHeredoc(h.content, run.plan.escape, lookup) : h.content;
      items.push(heredocItem(h.name, body));
      digests.push(["heredoc", body]);
    } else if (ins.keyword === "ADD" && /^https?:\/\//i.test(s)) {
      const file = join(work, `url-${items.length}`);
      const got = await downloadUrl(s, file, run.urlPolicy, w, run.signal);
      const { name, sizeBytes, sha256: sha } = got;
      if (checksum !== undefined && checksum !== sha)
        throw new ErrBuild(`${w}: ${s} has checksum ${sha}, not ${checksum}`);
      items.push({
        name,
        isDir: false,
        files: [
          {
            rel: "",
            kind: "file",
            mode: 0o600,
            uid: 0,
            gid: 0,
            mtimeSec: 0,
            sizeBytes,
            content: () => createReadStream(file),
          },
        ],
      });
      digests.push(["url", s, sha]);
    } else fromContext.push(s);
  }
  if (from !== undefined) {
    if (fromContext.length === 0) return { items, digest: digests };
    const reader = await fromReader(ctx, from);
    items.push(...(await stageItems(reader.reader, fromContext, w)));
    digests.push(["from", reader.identity, fromContext]);
    return { items, digest: digests };
  }
  if (fromContext.length > 0) {
    const context = await run.context();
    const selected = await context.select(fromContext, w);
    digests.push(["context", await digestSources(selected)]);
    for (const source of selected) {
      const top = source.files[0];
      // ADD unpacks a local tar archive (recognised by content) into the destination.
      const kind =
        ins.keyword === "ADD" && !source.isDir && top?.kind === "file"
          ? await archiveKind(top.hostPath)
          : undefined;
      if (kind !== undefined && top) items.push(await unpackArchive(top.hostPath, kind, work, w));
      else items.push(...contextItems([source]));
    }
  }
  return { items, digest: digests };
}

/** `COPY --from=`: an earlier stage, else an image (pulled if needed). */
async function fromReader(
  ctx: StepContext,
  from: string,
): Promise<{ reader: Ext4Reader; identity: string }> {
  const { run } = ctx;
  const index = stageRef(from, run.plan.stages, ctx.stageIndex);
  if (index !== undefined) {
    const r = run.results.get(index);
    if (!r) throw new ErrBuild(`${what(ctx)}: stage ${from} was not built`);
    return { reader: await run.disks.reader(r.fs), identity: fsKey(r.fs) };
  }
  // Not a stage: an image, as in Docker (so a misspelt stage name is a failed pull).
  const { record, ext4Path } = await ensureImage(from, { store: run.store }).catch((err: Error) => {
    throw new ErrBuild(`${what(ctx)}: --from=${from} is no stage; as an image: ${err.message}`);
  });
  return {
    reader: await run.disks.reader({ layers: [], ext4: ext4Path }),
    identity: record.configDigest,
  };
}
