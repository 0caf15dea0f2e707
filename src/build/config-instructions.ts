/**
 * Instructions that only change the image config or the stage's variables: ARG, ENV, LABEL,
 * USER, WORKDIR (its path; creating the directory is fs-steps.ts), SHELL, ENTRYPOINT, CMD,
 * EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK, MAINTAINER.
 */
import { posix } from "node:path";
import type { BuildRun } from "./build-run.js";
import type { Healthcheck, StageConfig } from "./config.js";
import { commandOf, execForm, flagsOf, flagValue, keyValues } from "./dockerfile/forms.js";
import { expandWord, expandWords, LexError } from "./dockerfile/lex.js";
import { lineError, type RawInstruction } from "./dockerfile/parse.js";

export interface StageVars {
  /** ARGs declared in this stage that have a value. */
  args: Map<string, string>;
  /** CMD was set in this stage (ENTRYPOINT then keeps it). */
  cmdSetHere: boolean;
}

/** ENV first, then the stage's ARGs: what `$NAME` means in an instruction. */
export function lookupIn(
  config: StageConfig,
  vars: StageVars,
): (name: string) => string | undefined {
  return (name) => config.env.get(name) ?? vars.args.get(name);
}

export function applyConfigInstruction(
  run: BuildRun,
  ins: RawInstruction,
  config: StageConfig,
  vars: StageVars,
): void {
  const escape = run.plan.escape;
  const lookup = lookupIn(config, vars);
  const word = (): string => expandWord(ins.args.trim(), escape, lookup);
  if (ins.flags.length > 0 && ins.keyword !== "HEALTHCHECK")
    throw lineError(ins.line, `${ins.keyword} does not support the flag --${ins.flags[0]?.name}`);
  try {
    switch (ins.keyword) {
      case "ARG":
        for (const [name, def] of keyValues(ins, escape, lookup, {
          oldForm: false,
          valueOptional: true,
        })) {
          run.consumedArgs.add(name);
          const value = run.buildArgs[name] ?? def ?? run.globalArgValues.get(name);
          if (value !== undefined) vars.args.set(name, value);
        }
        return;
      case "ENV":
        for (const [k, v] of keyValues(ins, escape, lookup, {
          oldForm: true,
          valueOptional: false,
        }))
          config.env.set(k, v ?? "");
        return;
      case "LABEL":
        for (const [k, v] of keyValues(ins, escape, lookup, {
          oldForm: true,
          valueOptional: false,
        }))
          config.labels.set(k, v ?? "");
        return;
      case "MAINTAINER":
        config.author = ins.args.trim();
        return;
      case "USER": {
        const user = word();
        if (user === "" || /\s/.test(user))
          throw lineError(ins.line, "USER expects one user[:group]");
        config.user = user;
        return;
      }
      case "WORKDIR": {
        const dir = word();
        if (dir === "") throw lineError(ins.line, "WORKDIR expects a path");
        config.workdir = posix.resolve(config.workdir ?? "/", dir);
        return;
      }
      case "SHELL": {
        const shell = execForm(ins.args);
        if (!shell || shell.length === 0)
          throw lineError(ins.line, 'SHELL requires the JSON form, e.g. SHELL ["/bin/bash", "-c"]');
        config.shell = shell;
        return;
      }
      case "CMD":
        config.cmd = commandOf(ins, config.shell);
        vars.cmdSetHere = true;
        return;
      case "ENTRYPOINT":
        config.entrypoint = commandOf(ins, config.shell);
        // Docker: an ENTRYPOINT drops a CMD inherited from the base image.
        if (!vars.cmdSetHere) config.cmd = undefined;
        return;
      case "EXPOSE":
        for (const port of expandWords(ins.args, escape, lookup)) {
          const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(port);
          if (!m) throw lineError(ins.line, `EXPOSE: invalid port ${JSON.stringify(port)}`);
          const from = Number(m[1]);
          const to = m[2] !== undefined ? Number(m[2]) : from;
          if (from < 1 || to > 65535 || to < from || to - from > 1000)
            throw lineError(ins.line, `EXPOSE: invalid port range ${port}`);
          for (let p = from; p <= to; p++)
            config.exposed.add(`${p}/${(m[3] ?? "tcp").toLowerCase()}`);
        }
        return;
      case "VOLUME":
        for (const v of execForm(ins.args) ?? expandWords(ins.args, escape, lookup)) {
          if (v === "") throw lineError(ins.line, "VOLUME: empty path");
          config.volumes.add(v);
        }
        return;
      case "STOPSIGNAL": {
        const sig = word();
        if (!/^(SIG[A-Z0-9+-]+|\d+)$/i.test(sig))
          throw lineError(ins.line, `STOPSIGNAL: invalid signal ${sig}`);
        config.stopSignal = sig;
        return;
      }
      case "HEALTHCHECK":
        config.healthcheck = healthcheck(ins);
        return;
    }
  } catch (err) {
    if (err instanceof LexError) throw lineError(ins.line, err.message);
    throw err;
  }
}

/** `30s`, `1m30s`, `500ms` -> nanoseconds (Docker's config unit). */
function durationNs(ins: RawInstruction, flag: string, text: string): number {
  const units: Record<string, number> = { ns: 1, us: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  let rest = text;
  while (rest !== "") {
    const m = /^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)/.exec(rest);
    if (!m)
      throw lineError(ins.line, `HEALTHCHECK --${flag}: invalid duration ${JSON.stringify(text)}`);
    total += Number(m[1]) * (units[m[2] as string] as number);
    rest = rest.slice(m[0].length);
  }
  return Math.round(total);
}

function healthcheck(ins: RawInstruction): Healthcheck {
  const flags = flagsOf(ins, ["interval", "timeout", "start-period", "start-interval", "retries"]);
  const text = ins.args.trim();
  if (/^none$/i.test(text)) return { Test: ["NONE"] };
  const m = /^CMD\s+([\s\S]+)$/i.exec(text);
  if (!m) throw lineError(ins.line, "HEALTHCHECK expects [OPTIONS] CMD command, or NONE");
  const body = m[1] as string;
  const exec = execForm(body);
  const hc: Healthcheck = { Test: exec ? ["CMD", ...exec] : ["CMD-SHELL", body.trim()] };
  const dur = (
    name: string,
    key: "Interval" | "Timeout" | "StartPeriod" | "StartInterval",
  ): void => {
    const v = flagValue(ins, flags, name);
    if (v !== undefined) hc[key] = durationNs(ins, name, v);
  };
  dur("interval", "Interval");
  dur("timeout", "Timeout");
  dur("start-period", "StartPeriod");
  dur("start-interval", "StartInterval");
  const retries = flagValue(ins, flags, "retries");
  if (retries !== undefined) {
    if (!/^\d+$/.test(retries)) throw lineError(ins.line, "HEALTHCHECK --retries must be a number");
    hc.Retries = Number(retries);
  }
  return hc;
}
