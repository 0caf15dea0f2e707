import { ErrImage } from "../errors.js";

/** The parts of an OCI image config a sandbox applies (Docker's semantics). */
export interface ImageRuntimeConfig {
  env: Record<string, string>;
  entrypoint?: string[];
  cmd?: string[];
  user?: string;
  workdir?: string;
}

export interface ParsedImageConfig {
  runtime: ImageRuntimeConfig;
  /** Uncompressed layer digests (`rootfs.diff_ids`), in order. */
  diffIds: string[];
  os: string | undefined;
  architecture: string | undefined;
  created: string | undefined;
}

const strings = (v: unknown): string[] | undefined =>
  Array.isArray(v) && v.every((s) => typeof s === "string") ? (v as string[]) : undefined;

/** Reads an image config blob (OCI or Docker; same JSON shape). */
export function parseImageConfig(body: Buffer): ParsedImageConfig {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
  } catch {
    throw new ErrImage("malformed image config: not JSON");
  }
  const config = (json.config ?? {}) as Record<string, unknown>;
  const rootfs = (json.rootfs ?? {}) as Record<string, unknown>;
  const diffIds = strings(rootfs.diff_ids);
  if (!diffIds || diffIds.some((d) => !/^sha256:[a-f0-9]{64}$/.test(d)))
    throw new ErrImage("malformed image config: rootfs.diff_ids must list sha256 digests");
  const env: Record<string, string> = {};
  // Docker drops ENV entries without "=", and a later duplicate wins.
  for (const kv of strings(config.Env) ?? []) {
    const eq = kv.indexOf("=");
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const runtime: ImageRuntimeConfig = { env };
  const entrypoint = strings(config.Entrypoint);
  const cmd = strings(config.Cmd);
  if (entrypoint) runtime.entrypoint = entrypoint;
  if (cmd) runtime.cmd = cmd;
  if (typeof config.User === "string" && config.User !== "") runtime.user = config.User;
  if (typeof config.WorkingDir === "string" && config.WorkingDir !== "")
    runtime.workdir = config.WorkingDir;
  return {
    runtime,
    diffIds,
    os: typeof json.os === "string" ? json.os : undefined,
    architecture: typeof json.architecture === "string" ? json.architecture : undefined,
    created: typeof json.created === "string" ? json.created : undefined,
  };
}
