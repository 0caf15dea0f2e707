/** What `buildImage` takes and returns (the SDK's and the CLI's build). */
import type { ImageRecord, ImageStore } from "../image/index.js";
import type { BuildProgress } from "./progress.js";

export interface BuildSecretOption {
  /** The secret's value (read from a file or an environment variable by the CLI). */
  value: string;
  /**
   * Hosts (allowlist globs) the value may be sent to. Given: a `RUN --mount=type=secret,env=NAME`
   * sees only a placeholder in NAME, swapped by the host on TLS requests to these hosts (that
   * step runs in intercept mode). Absent: the step gets the value itself as a file (and in
   * `env=NAME` if asked); every layer is checked not to contain it.
   */
  hosts?: string[];
}

export interface BuildOptions {
  /** The build context directory. */
  context: string;
  /** Dockerfile path (default `<context>/Dockerfile`). */
  dockerfile?: string;
  /** The Dockerfile's text, instead of reading `dockerfile`. */
  dockerfileText?: string;
  /** `NAME[:TAG]` references the image is stored under (none: only `output`). */
  tags?: string[];
  buildArgs?: Record<string, string>;
  /** Build this stage (by name) instead of the last one. */
  target?: string;
  /** Only `linux/amd64` (the guest's platform). */
  platform?: string;
  /** Run every step, ignoring the cache (results are still cached). */
  noCache?: boolean;
  secrets?: Record<string, BuildSecretOption>;
  /** RUN steps (and ADD URLs) in intercept mode, allowed only these hosts. Default: open mode. */
  allowHosts?: string[];
  /** Let RUN steps and ADD reach private addresses (tests reaching 127.0.0.1). Default false. */
  allowPrivateHosts?: boolean;
  /** Also write the image as a tar (`oci`: OCI image layout; `docker`: `docker load` format). */
  output?: { type: "oci" | "docker"; dest: string };
  progress?: BuildProgress;
  /** Abort (Ctrl-C): the running step's sandbox is stopped, nothing is stored. */
  signal?: AbortSignal;
  /** Each RUN step's sandbox: vCPUs (default 1), RAM (default 1024 MiB), writable disk. */
  cpus?: number;
  memoryMb?: number;
  diskSizeMb?: number;
  /**
   * Timestamps in layers are clamped to this (seconds), and the config's `created` is it.
   * Default: `$SOURCE_DATE_EPOCH`, else 0 (1970-01-01): same inputs, same digests.
   */
  sourceDateEpoch?: number;
  store?: ImageStore;
  /** The build cache directory (default `<cacheDir>/build`). */
  cacheDir?: string;
}

export interface BuildResult {
  /** Canonical references stored (one per tag). */
  references: string[];
  /** Digest of the image manifest (what `name@digest` pins) and of its config. */
  digest: string;
  configDigest: string;
  /** The store record of the first tag, if any. */
  record?: ImageRecord;
  stepsRun: number;
  stepsCached: number;
}
