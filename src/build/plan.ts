/**
 * Stages: the instructions between FROMs, their names, what each is based on (an image,
 * `scratch` or an earlier stage) and which other stages it reads with `COPY --from`. Only the
 * target stage and the stages it needs are built, in Dockerfile order.
 */
import { ErrBuild } from "../errors.js";
import { expandWord } from "./dockerfile/lex.js";
import { flagsOf, flagValue } from "./dockerfile/forms.js";
import { lineError, type ParsedDockerfile, type RawInstruction } from "./dockerfile/parse.js";

export interface Stage {
  index: number;
  /** Lower-case `AS` name, if any. */
  name?: string;
  /** FROM's image reference after global ARG expansion (`scratch`, a stage name, an image). */
  base: string;
  /** The stage this one is based on, when FROM names an earlier stage. */
  baseStage?: number;
  platform?: string;
  fromLine: number;
  instructions: RawInstruction[];
}

export interface BuildPlan {
  escape: string;
  /** ARGs before the first FROM: name -> default (undefined: declared without one). */
  globalArgs: Array<[string, string | undefined]>;
  stages: Stage[];
  /** Indexes of the stages to build, dependencies first; the last is the target. */
  order: number[];
}

/** Values of ARGs for FROM lines: build args over global defaults, plus the platform ARGs. */
export function globalArgValues(
  globalArgs: Array<[string, string | undefined]>,
  buildArgs: Readonly<Record<string, string>>,
  platformArgs: Readonly<Record<string, string>>,
): Map<string, string> {
  const values = new Map<string, string>(Object.entries(platformArgs));
  for (const [name, def] of globalArgs) {
    const v = buildArgs[name] ?? def;
    if (v !== undefined) values.set(name, v);
  }
  return values;
}

export function planBuild(
  parsed: ParsedDockerfile,
  globalValues: (globalArgs: Array<[string, string | undefined]>) => Map<string, string>,
  target: string | undefined,
): BuildPlan {
  const { escape } = parsed;
  const globalArgs: Array<[string, string | undefined]> = [];
  const stages: Stage[] = [];
  let values = new Map<string, string>();
  for (const ins of parsed.instructions) {
    if (ins.keyword === "FROM") {
      if (stages.length === 0) values = globalValues(globalArgs);
      stages.push(fromStage(ins, stages, escape, values));
      continue;
    }
    const current = stages[stages.length - 1];
    if (current) current.instructions.push(ins);
    else {
      // Before the first FROM only ARG is allowed (parse.ts checked).
      const eq = ins.args.indexOf("=");
      const name = (eq < 0 ? ins.args : ins.args.slice(0, eq)).trim();
      const def =
        eq < 0
          ? undefined
          : expandWord(
              ins.args.slice(eq + 1).trim(),
              escape,
              (n) => values.get(n) ?? globalValues(globalArgs).get(n),
            );
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
        throw lineError(ins.line, `invalid ARG name ${JSON.stringify(name)}`);
      globalArgs.push([name, def]);
    }
  }
  let targetIndex = stages.length - 1;
  if (target !== undefined) {
    const t = stages.findIndex((s) => s.name === target.toLowerCase());
    if (t < 0) throw new ErrBuild(`target stage "${target}" not found in the Dockerfile`);
    targetIndex = t;
  }
  const order: number[] = [];
  const visiting = new Set<number>();
  const visit = (i: number): void => {
    if (order.includes(i)) return;
    if (visiting.has(i)) throw new ErrBuild(`stage ${i} depends on itself`);
    visiting.add(i);
    const stage = stages[i] as Stage;
    if (stage.baseStage !== undefined) visit(stage.baseStage);
    for (const dep of copyFromStages(stage, stages, escape, values)) visit(dep);
    order.push(i);
  };
  visit(targetIndex);
  return { escape, globalArgs, stages, order };
}

function fromStage(
  ins: RawInstruction,
  stages: Stage[],
  escape: string,
  values: Map<string, string>,
): Stage {
  const flags = flagsOf(ins, ["platform"]);
  const lookup = (n: string): string | undefined => values.get(n);
  const words = ins.args.trim().split(/\s+/);
  if (!(words.length === 1 || (words.length === 3 && words[1]?.toLowerCase() === "as")))
    throw lineError(ins.line, "FROM expects IMAGE [AS NAME]");
  const base = expandWord(words[0] as string, escape, lookup);
  if (base === "") throw lineError(ins.line, `FROM ${words[0]} expands to an empty image name`);
  const name = words[2]?.toLowerCase();
  if (name !== undefined && !/^[a-z][a-z0-9-_.]*$/.test(name))
    throw lineError(ins.line, `invalid stage name ${JSON.stringify(words[2])}`);
  if (name !== undefined && stages.some((s) => s.name === name))
    throw lineError(ins.line, `duplicate stage name "${name}"`);
  const baseStage = stages.findIndex((s) => s.name === base.toLowerCase());
  const platform = flagValue(ins, flags, "platform");
  return {
    index: stages.length,
    ...(name !== undefined ? { name } : {}),
    base,
    ...(baseStage >= 0 ? { baseStage } : {}),
    ...(platform !== undefined ? { platform: expandWord(platform, escape, lookup) } : {}),
    fromLine: ins.line,
    instructions: [],
  };
}

/** Resolves a `--from` value: an earlier stage's name or index, else undefined (an image). */
export function stageRef(
  value: string,
  stages: readonly Stage[],
  before: number,
): number | undefined {
  if (/^\d+$/.test(value)) {
    const i = Number(value);
    return i < before ? i : undefined;
  }
  const i = stages.findIndex((s) => s.name === value.toLowerCase());
  return i >= 0 && i < before ? i : undefined;
}

function copyFromStages(
  stage: Stage,
  stages: readonly Stage[],
  escape: string,
  values: Map<string, string>,
): number[] {
  const deps: number[] = [];
  for (const ins of stage.instructions) {
    if (ins.keyword !== "COPY") continue;
    const from = ins.flags.find((f) => f.name === "from")?.value;
    if (!from) continue;
    const value = expandWord(from, escape, (n) => values.get(n));
    if (/^\d+$/.test(value) && Number(value) >= stage.index)
      throw lineError(ins.line, `COPY --from=${value}: stage ${value} is not an earlier stage`);
    const dep = stageRef(value, stages, stage.index);
    if (dep !== undefined) deps.push(dep);
  }
  return deps;
}
