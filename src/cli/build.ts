/**
 * `wheellock build`: builds a Dockerfile into the local image store (docs/BUILD.md). A failing
 * RUN prints its output and the error, and the command exits with the RUN's exit code; Ctrl-C
 * stops the running step's sandbox, stores nothing and exits 130 (a second Ctrl-C exits at
 * once; the exit hooks still remove the VM).
 */
import { readFileSync } from "node:fs";
import { Command, InvalidArgumentError } from "commander";
import { ErrBuild } from "../errors.js";
import {
  buildImage,
  plainBuildProgress,
  ttyBuildProgress,
  type BuildOptions,
  type BuildSecretOption,
} from "../build/index.js";
import { collect, oneOf } from "./flags.js";

interface BuildFlags {
  tag: string[];
  file?: string;
  buildArg: string[];
  target?: string;
  platform?: string;
  cache: boolean;
  secret: string[];
  allowHost: string[];
  progress: "auto" | "plain";
  output?: string;
}

function pairs(text: string): Array<[string, string]> {
  return text.split(",").map((p) => {
    const eq = p.indexOf("=");
    return eq < 0 ? [p.trim(), ""] : [p.slice(0, eq).trim(), p.slice(eq + 1)];
  });
}

/** `id=ID,env=VAR` | `id=ID,src=FILE`, plus `host=PATTERN` (repeatable) for placeholder use. */
export function parseSecretFlag(spec: string): [string, BuildSecretOption] {
  let id: string | undefined;
  let value: string | undefined;
  const hosts: string[] = [];
  for (const [k, v] of pairs(spec)) {
    if (k === "id") id = v;
    else if (k === "env") {
      value = process.env[v];
      if (value === undefined) throw new InvalidArgumentError(`--secret ${spec}: $${v} is not set`);
      id ??= v;
    } else if (k === "src" || k === "source") {
      try {
        value = readFileSync(v, "utf8");
      } catch {
        throw new InvalidArgumentError(`--secret ${spec}: cannot read ${v}`);
      }
    } else if (k === "host") hosts.push(v);
    else if (k !== "type")
      throw new InvalidArgumentError(`--secret: unknown key ${k} (id, env, src, host)`);
  }
  if (!id || value === undefined)
    throw new InvalidArgumentError(`--secret ${spec}: expected id=ID,env=VAR or id=ID,src=FILE`);
  return [id, { value, ...(hosts.length > 0 ? { hosts } : {}) }];
}

function parseOutput(spec: string): NonNullable<BuildOptions["output"]> {
  const kv = Object.fromEntries(pairs(spec));
  const type = kv.type;
  if ((type !== "oci" && type !== "docker") || !kv.dest)
    throw new InvalidArgumentError(`--output ${spec}: expected type=oci|docker,dest=FILE`);
  return { type, dest: kv.dest };
}

export function buildCommand(): Command {
  return new Command("build")
    .argument("<context>", "build context directory")
    .option("-t, --tag <name>", "store the image as NAME[:TAG] (repeatable)", collect, [])
    .option("-f, --file <path>", "Dockerfile (default CONTEXT/Dockerfile)")
    .option("--build-arg <k=v>", "set a build ARG (repeatable; K alone takes $K)", collect, [])
    .option("--target <stage>", "build this stage instead of the last")
    .option("--platform <os/arch>", "target platform (only linux/amd64)")
    .option("--no-cache", "run every step, ignoring cached layers")
    .option(
      "--secret <spec>",
      "id=ID,env=VAR | id=ID,src=FILE [,host=PATTERN...] for RUN --mount=type=secret (repeatable)",
      collect,
      [],
    )
    .option(
      "--allow-host <hosts>",
      "RUN steps intercept and reach only these hosts (repeatable, comma-separated)",
      collect,
      [],
    )
    .option(
      "--progress <mode>",
      "auto (compact on a terminal) or plain",
      oneOf("--progress", ["auto", "plain"] as const),
      "auto",
    )
    .option("--output <spec>", "also write the image: type=oci|docker,dest=FILE")
    .action(async (context: string, flags: BuildFlags) => {
      const buildArgs: Record<string, string> = {};
      for (const a of flags.buildArg) {
        const eq = a.indexOf("=");
        if (eq < 0) {
          const v = process.env[a];
          if (v !== undefined) buildArgs[a] = v;
        } else buildArgs[a.slice(0, eq)] = a.slice(eq + 1);
      }
      const tty = flags.progress === "auto" && process.stderr.isTTY === true;
      const write = (t: string): void => void process.stderr.write(t);
      const progress = tty
        ? ttyBuildProgress(write, () => process.stderr.columns ?? 80)
        : plainBuildProgress(write);
      const controller = new AbortController();
      let interrupts = 0;
      const onSigint = (): void => {
        if (++interrupts > 1) process.exit(130);
        process.stderr.write("\nwheellock: interrupting the build (Ctrl-C again to exit now)\n");
        controller.abort();
      };
      process.on("SIGINT", onSigint);
      const started = Date.now();
      try {
        const result = await buildImage({
          context,
          ...(flags.file !== undefined ? { dockerfile: flags.file } : {}),
          tags: flags.tag,
          buildArgs,
          ...(flags.target !== undefined ? { target: flags.target } : {}),
          ...(flags.platform !== undefined ? { platform: flags.platform } : {}),
          noCache: !flags.cache,
          secrets: Object.fromEntries(flags.secret.map(parseSecretFlag)),
          allowHosts: flags.allowHost
            .flatMap((h) => h.split(","))
            .map((h) => h.trim())
            .filter((h) => h !== ""),
          ...(flags.output !== undefined ? { output: parseOutput(flags.output) } : {}),
          progress,
          signal: controller.signal,
        });
        process.stderr.write(
          `built ${result.digest.slice(0, 19)} in ${((Date.now() - started) / 1000).toFixed(1)}s (${result.stepsRun} steps run, ${result.stepsCached} cached)\n`,
        );
        for (const tag of flags.tag) process.stdout.write(`${tag}\n`);
      } catch (err) {
        if (!(err instanceof ErrBuild)) throw err;
        process.stderr.write(`wheellock: ${err.message}\n`);
        process.exitCode = controller.signal.aborted ? 130 : (err.details.exitCode ?? 1);
      } finally {
        process.off("SIGINT", onSigint);
      }
    });
}
