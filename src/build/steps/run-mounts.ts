/**
 * `RUN --mount=...` and `--network=...`: secrets (files with the value, or placeholders in an
 * env variable for secrets bound to hosts), caches kept between builds, tmpfs. Each becomes a
 * sandbox mount; bind and ssh mounts are refused with the line.
 */
import { posix } from "node:path";
import { csvPairs } from "../dockerfile/forms.js";
import { lineError, type RawInstruction } from "../dockerfile/parse.js";

export interface SecretMount {
  type: "secret";
  id: string;
  /** Guest file path (default /run/secrets/ID); undefined with `env=` only. */
  target?: string;
  /** Also (or only) in this environment variable. */
  env?: string;
  required: boolean;
  mode: number;
  uid: number;
  gid: number;
}

export interface CacheMount {
  type: "cache";
  id: string;
  target: string;
  readonly: boolean;
  mode: number;
  uid: number;
  gid: number;
}

export interface TmpfsMount {
  type: "tmpfs";
  target: string;
  sizeBytes?: number;
}

export type RunMount = SecretMount | CacheMount | TmpfsMount;

export type RunNetwork = "default" | "none";

function num(ins: RawInstruction, key: string, value: string, octal = false): number {
  const n = octal ? Number.parseInt(value, 8) : Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
    throw lineError(ins.line, `RUN --mount ${key}=${value}: not a number`);
  return n;
}

function target(ins: RawInstruction, value: string | undefined, workdir: string): string {
  if (!value) throw lineError(ins.line, "RUN --mount needs target=PATH");
  return posix.normalize(value.startsWith("/") ? value : posix.join(workdir || "/", value));
}

export function parseMount(ins: RawInstruction, spec: string, workdir: string): RunMount {
  const pairs = csvPairs(spec);
  const get = (k: string): string | undefined => pairs.find(([key]) => key === k)?.[1];
  const type = get("type") ?? "bind";
  const known: Record<string, string[]> = {
    secret: ["type", "id", "target", "dst", "destination", "env", "required", "mode", "uid", "gid"],
    cache: [
      "type",
      "id",
      "target",
      "dst",
      "destination",
      "readonly",
      "ro",
      "sharing",
      "mode",
      "uid",
      "gid",
    ],
    tmpfs: ["type", "target", "dst", "destination", "size"],
  };
  const allowed = known[type];
  if (!allowed)
    throw lineError(
      ins.line,
      `RUN --mount=type=${type} is not supported (secret, cache, tmpfs are)`,
    );
  for (const [k] of pairs)
    if (!allowed.includes(k))
      throw lineError(ins.line, `RUN --mount type=${type}: unknown option ${k}`);
  const dst = get("target") ?? get("dst") ?? get("destination");
  const flag = (k: string): boolean => {
    const v = get(k);
    return v !== undefined && v !== "false";
  };
  if (type === "secret") {
    const id = get("id") ?? (dst ? posix.basename(dst) : undefined);
    if (!id) throw lineError(ins.line, "RUN --mount=type=secret needs id=ID");
    const env = get("env");
    return {
      type: "secret",
      id,
      ...(dst !== undefined || env === undefined
        ? { target: target(ins, dst ?? `/run/secrets/${id}`, workdir) }
        : {}),
      ...(env !== undefined ? { env } : {}),
      required: flag("required"),
      mode: get("mode") !== undefined ? num(ins, "mode", get("mode") as string, true) : 0o400,
      uid: get("uid") !== undefined ? num(ins, "uid", get("uid") as string) : 0,
      gid: get("gid") !== undefined ? num(ins, "gid", get("gid") as string) : 0,
    };
  }
  const tgt = target(ins, dst, workdir);
  if (type === "tmpfs") {
    const size = get("size");
    return {
      type: "tmpfs",
      target: tgt,
      ...(size !== undefined ? { sizeBytes: num(ins, "size", size) } : {}),
    };
  }
  return {
    type: "cache",
    id: get("id") ?? tgt,
    target: tgt,
    readonly: flag("readonly") || flag("ro"),
    mode: get("mode") !== undefined ? num(ins, "mode", get("mode") as string, true) : 0o755,
    uid: get("uid") !== undefined ? num(ins, "uid", get("uid") as string) : 0,
    gid: get("gid") !== undefined ? num(ins, "gid", get("gid") as string) : 0,
  };
}

export function parseNetwork(ins: RawInstruction, value: string | undefined): RunNetwork {
  if (value === undefined || value === "default") return "default";
  if (value === "none") return "none";
  throw lineError(ins.line, `RUN --network=${value} is not supported (default or none)`);
}
