/**
 * `npm run fuzz -- [--time S] [--target NAME]... [--seed N] [--reproduce FILE]`: fuzzes every
 * host parser that sees guest bytes (fuzz/targets/), the time split among the targets, and
 * prints a JSON summary on stdout. Findings are written under the crashes dir with a line on
 * stderr saying how to replay each. Exit status 1 when anything was found (CI fails on it).
 */
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import type { CoverageMode } from "./engine.js";
import type { Finding } from "./findings.js";
import { superviseTarget, type TargetResult } from "./supervisor.js";
import { TARGET_NAMES } from "./targets/index.js";

const FUZZ_DIR = import.meta.dirname;
const CORPUS_DIR = join(FUZZ_DIR, "corpus");
/** Committed inputs per target: enough to start deep, few enough to review. */
const MAX_CORPUS_FILES = 24;
const MAX_CORPUS_FILE_BYTES = 8 * 1024;

interface Options {
  time: number;
  target: string[];
  seed?: number;
  reproduce?: string;
  crashes: string;
  coverage: CoverageMode;
  verbose: boolean;
  list: boolean;
  saveCorpus: boolean;
}

function positiveNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("expected a positive number");
  return n;
}

function coverageMode(v: string): CoverageMode {
  if (v === "guide" || v === "measure" || v === "off") return v;
  throw new InvalidArgumentError("expected guide, measure or off");
}

function seedNumber(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError("expected an integer ≥ 0");
  return n;
}

function parseArgs(argv: string[]): Options {
  const program = new Command("fuzz")
    .description("fuzz the host parsers that see guest bytes")
    .option("--time <seconds>", "total time, split among the targets", positiveNumber, 60)
    .option(
      "--target <name>",
      `a target to run (repeatable; default all: ${TARGET_NAMES.join(", ")})`,
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option("--seed <n>", "random seed (default: from the clock; printed)", seedNumber)
    .option("--reproduce <file>", "run one saved input through --target and show what happens")
    .option("--crashes <dir>", "where findings are written", join(FUZZ_DIR, "crashes"))
    .option(
      "--coverage <mode>",
      "measure: blind mutation, blocks reached only counted; guide: V8 block coverage picks the inputs to build on (slower, no deeper here: docs/PERFORMANCE.md); off",
      coverageMode,
      "measure",
    )
    .option("--verbose", "pass the targets' own output through to stderr", false)
    .option("--list", "list the targets and exit", false)
    .option(
      "--save-corpus",
      `add the run's corpus to fuzz/corpus/<target>/ (at most ${MAX_CORPUS_FILES} files each)`,
      false,
    )
    .exitOverride()
    .configureOutput({ writeOut: (s) => process.stderr.write(s) });
  program.parse(argv, { from: "user" });
  return program.opts<Options>();
}

function corpusOf(target: string): Buffer[] {
  const dir = join(CORPUS_DIR, target);
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return [];
  }
  return names.map((n) => readFileSync(join(dir, n)));
}

/** Adds inputs to a target's committed corpus, named by content, small ones first. */
function saveCorpus(target: string, inputs: Buffer[]): number {
  const dir = join(CORPUS_DIR, target);
  mkdirSync(dir, { recursive: true });
  const have = new Set(readdirSync(dir));
  let added = 0;
  for (const input of [...inputs].sort((a, b) => a.length - b.length)) {
    if (have.size >= MAX_CORPUS_FILES) break;
    if (input.length > MAX_CORPUS_FILE_BYTES) continue;
    const name = `${createHash("sha256").update(input).digest("hex").slice(0, 16)}.bin`;
    if (have.has(name)) continue;
    writeFileSync(join(dir, name), input);
    have.add(name);
    added++;
  }
  return added;
}

function saveFinding(dir: string, f: Finding): string {
  mkdirSync(dir, { recursive: true });
  const id = createHash("sha256").update(f.input).digest("hex").slice(0, 12);
  const file = join(dir, `${f.target}-${f.kind}-${id}.bin`);
  writeFileSync(file, f.input);
  writeFileSync(`${file}.txt`, `${f.kind}: ${f.message}\n\n${f.stack ?? ""}\n`);
  return file;
}

function reproduceHint(target: string, file: string): string {
  return `npm run fuzz -- --target ${target} --reproduce ${relative(process.cwd(), file)}`;
}

async function reproduce(opts: Options): Promise<number> {
  const file = opts.reproduce ?? "";
  const target = opts.target[0] ?? TARGET_NAMES.find((t) => basename(file).startsWith(`${t}-`));
  if (target === undefined || opts.target.length > 1)
    throw new Error("--reproduce needs one --target (or a file named <target>-...)");
  const findings: Finding[] = [];
  const result = await superviseTarget({
    target,
    seed: opts.seed ?? 1,
    timeMs: 60_000,
    coverage: "off",
    inputs: [readFileSync(file)],
    replay: true,
    verbose: true,
    onFinding: (f) => findings.push(f),
  });
  for (const f of findings) process.stderr.write(`${f.kind}: ${f.message}\n${f.stack ?? ""}\n`);
  process.stdout.write(
    `${JSON.stringify({ target, reproduced: findings.length > 0, findings: findings.map((f) => ({ kind: f.kind, message: f.message })), execs: result.stats.execs })}\n`,
  );
  return findings.length > 0 ? 1 : 0;
}

async function fuzz(opts: Options): Promise<number> {
  const targets = opts.target.length > 0 ? opts.target : [...TARGET_NAMES];
  for (const t of targets) if (!TARGET_NAMES.includes(t)) throw new Error(`unknown target "${t}"`);
  const seed = opts.seed ?? Date.now() % 1_000_000_007;
  const perTargetMs = (opts.time * 1000) / targets.length;
  const results: (TargetResult & { crashFiles: string[] })[] = [];
  for (const [i, target] of targets.entries()) {
    const crashFiles: string[] = [];
    const result = await superviseTarget({
      target,
      seed: seed + i,
      timeMs: perTargetMs,
      coverage: opts.coverage,
      inputs: corpusOf(target),
      replay: false,
      verbose: opts.verbose,
      ...(opts.saveCorpus
        ? { onCorpus: (inputs: Buffer[]) => void saveCorpus(target, inputs) }
        : {}),
      onFinding: (f) => {
        const file = saveFinding(opts.crashes, f);
        crashFiles.push(relative(process.cwd(), file));
        process.stderr.write(
          `fuzz: ${target}: ${f.kind}: ${f.message.split("\n")[0]}\n  reproduce: ${reproduceHint(target, file)}\n`,
        );
      },
    });
    results.push({ ...result, crashFiles });
  }
  const summary = {
    seed,
    timeSeconds: opts.time,
    coverage: opts.coverage,
    targets: results.map((r) => ({
      target: r.target,
      execs: r.stats.execs,
      execsPerSecond: Math.round(r.stats.execs / (r.wallMs / 1000)),
      corpus: r.stats.corpus,
      blocksHit: r.stats.blocksHit,
      crashes: r.stats.findings,
      crashHits: r.stats.findingHits,
      workerRestarts: r.restarts,
      crashFiles: r.crashFiles,
    })),
    crashes: results.reduce((n, r) => n + r.stats.findings, 0),
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  return summary.crashes > 0 ? 1 : 0;
}

async function main(): Promise<number> {
  let opts: Options;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    const code = (err as { exitCode?: number }).exitCode;
    return code ?? 2;
  }
  if (opts.list) {
    process.stdout.write(`${TARGET_NAMES.join("\n")}\n`);
    return 0;
  }
  return opts.reproduce !== undefined ? reproduce(opts) : fuzz(opts);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`fuzz: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
