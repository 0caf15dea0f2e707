/**
 * The image config a stage accumulates (OCI image config `config` section plus history), from
 * its base image's config through ENV, LABEL, USER, WORKDIR, SHELL, ENTRYPOINT, CMD, EXPOSE,
 * VOLUME, STOPSIGNAL and HEALTHCHECK, and its serialisation. `created` and every history
 * timestamp are the build's fixed epoch, so the same build gives the same config digest.
 */
export interface Healthcheck {
  Test: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
}

export class StageConfig {
  env = new Map<string, string>();
  user: string | undefined;
  workdir: string | undefined;
  entrypoint: string[] | undefined;
  cmd: string[] | undefined;
  shell: string[] = ["/bin/sh", "-c"];
  labels = new Map<string, string>();
  exposed = new Set<string>();
  volumes = new Set<string>();
  stopSignal: string | undefined;
  healthcheck: Healthcheck | undefined;
  history: HistoryEntry[] = [];
  /** Docker's MAINTAINER (config `author`). */
  author: string | undefined;

  clone(): StageConfig {
    const c = new StageConfig();
    Object.assign(c, this);
    c.env = new Map(this.env);
    c.labels = new Map(this.labels);
    c.exposed = new Set(this.exposed);
    c.volumes = new Set(this.volumes);
    c.shell = [...this.shell];
    c.history = [...this.history];
    return c;
  }

  /** From a base image's config JSON (OCI or Docker). */
  static fromImageConfig(json: Record<string, unknown>): StageConfig {
    const c = new StageConfig();
    const cfg = (json.config ?? {}) as Record<string, unknown>;
    const strings = (v: unknown): string[] | undefined =>
      Array.isArray(v) && v.every((s) => typeof s === "string") ? [...(v as string[])] : undefined;
    for (const kv of strings(cfg.Env) ?? []) {
      const eq = kv.indexOf("=");
      if (eq > 0) c.env.set(kv.slice(0, eq), kv.slice(eq + 1));
    }
    if (typeof cfg.User === "string" && cfg.User !== "") c.user = cfg.User;
    if (typeof cfg.WorkingDir === "string" && cfg.WorkingDir !== "") c.workdir = cfg.WorkingDir;
    c.entrypoint = strings(cfg.Entrypoint);
    c.cmd = strings(cfg.Cmd);
    c.shell = strings(cfg.Shell) ?? c.shell;
    const obj = (v: unknown): Record<string, unknown> =>
      v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
    for (const [k, v] of Object.entries(obj(cfg.Labels)))
      if (typeof v === "string") c.labels.set(k, v);
    for (const k of Object.keys(obj(cfg.ExposedPorts))) c.exposed.add(k);
    for (const k of Object.keys(obj(cfg.Volumes))) c.volumes.add(k);
    if (typeof cfg.StopSignal === "string") c.stopSignal = cfg.StopSignal;
    if (cfg.Healthcheck && typeof cfg.Healthcheck === "object")
      c.healthcheck = cfg.Healthcheck as Healthcheck;
    if (Array.isArray(json.history)) c.history = json.history as HistoryEntry[];
    if (typeof json.author === "string") c.author = json.author;
    return c;
  }

  /** The OCI image config JSON (key order fixed: the bytes are digested). */
  toJson(
    diffIds: readonly string[],
    createdIso: string,
    platform: { os: string; architecture: string },
  ): Buffer {
    const sorted = <T>(m: Map<string, T>): Record<string, T> =>
      Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : 1)));
    const set = (s: Set<string>): Record<string, object> | undefined =>
      s.size === 0 ? undefined : Object.fromEntries([...s].sort().map((k) => [k, {}]));
    const config: Record<string, unknown> = {
      User: this.user,
      ExposedPorts: set(this.exposed),
      Env: [...this.env].map(([k, v]) => `${k}=${v}`),
      Entrypoint: this.entrypoint,
      Cmd: this.cmd,
      Volumes: set(this.volumes),
      WorkingDir: this.workdir,
      Labels: this.labels.size > 0 ? sorted(this.labels) : undefined,
      StopSignal: this.stopSignal,
      Healthcheck: this.healthcheck,
      Shell: this.shell.join("\0") === "/bin/sh\0-c" ? undefined : this.shell,
    };
    return Buffer.from(
      JSON.stringify({
        created: createdIso,
        ...(this.author !== undefined ? { author: this.author } : {}),
        architecture: platform.architecture,
        os: platform.os,
        config,
        rootfs: { type: "layers", diff_ids: diffIds },
        history: this.history,
      }),
    );
  }
}
