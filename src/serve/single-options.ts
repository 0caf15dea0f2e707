/**
 * The sandbox `serve --single` runs: the same document `POST /v1/sandboxes` takes
 * (`{ "options": { ... } }`, or the options object alone), from `--plan FILE` or stdin, and
 * checked the same way (create-options.ts): its host paths must lie under the node's
 * `--host-path` directories. Whoever writes the plan (a pod spec, a controller filling a
 * template) is not necessarily who may read the node's files.
 */
import { readFileSync } from "node:fs";
import type { SandboxOptions } from "../config/index.js";
import { ErrInvalidConfig } from "../errors.js";
import { nodeOptions } from "./create-options.js";

/** Bounded like a REST body: a plan is small. */
const MAX_PLAN_BYTES = 1024 * 1024;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > MAX_PLAN_BYTES)
      throw new ErrInvalidConfig(`the plan on stdin is over ${MAX_PLAN_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export async function readSingleOptions(
  planFile: string | undefined,
  hostPaths: readonly string[],
  allowVolumes = false,
  writable?: readonly string[],
): Promise<SandboxOptions> {
  const text =
    planFile === undefined || planFile === "-" ? await readStdin() : readFileSync(planFile, "utf8");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ErrInvalidConfig(`the plan (${planFile ?? "stdin"}) is not valid JSON`);
  }
  const doc = value as { options?: unknown };
  const options = typeof doc === "object" && doc !== null && "options" in doc ? doc.options : value;
  return nodeOptions(options, hostPaths, allowVolumes, writable) as SandboxOptions;
}
