/**
 * A RUN step: an ordinary sandbox (`Sandbox.create`) booted on the stage's root disk, with the
 * build's network policy, its secrets (files holding the value, or placeholders the host swaps
 * on requests to the secret's hosts), cache and tmpfs mounts; the command runs as the stage's
 * USER in its WORKDIR with its ENV and ARGs. When it succeeds, the sandbox's writable disk is
 * kept, read on the host once the VM has powered off, and turned into the step's layer.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join, posix } from "node:path";
import type { MountConfig, SandboxOptions, SecretOption } from "../../config/index.js";
import { ErrBuild } from "../../errors.js";
import { Sandbox } from "../../sdk/index.js";
import type { BuildCache } from "../cache.js";
import { Ext4Reader } from "../ext4/reader.js";
import type { LayerEntry } from "../layer/entry.js";
import type { Needle } from "../layer/scanner.js";
import { diffUpper } from "../layer/upper-diff.js";
import { emptyDir, findNeedlesInTree } from "./cache-scan.js";
import type { CacheMount, RunMount, RunNetwork, SecretMount } from "./run-mounts.js";

export interface BuildSecret {
  value: string;
  /** Bound to hosts: the guest sees a placeholder, swapped on requests to these hosts. */
  hosts?: readonly string[];
}

export interface RunSandboxSettings {
  cpus?: number;
  memoryMb?: number;
  diskSizeMb?: number;
  /** Intercept mode with this allowlist (`--allow-host`); open mode when empty. */
  allowHosts: readonly string[];
  allowPrivateHosts: boolean;
  secrets: Readonly<Record<string, BuildSecret>>;
  /** The intercept CA (PEM) when any step intercepts: cut out of the CA bundles again. */
  caPem: () => Promise<string>;
}

export interface RunRequest {
  what: string;
  line: number;
  argv: string[];
  /** ARGs then ENV (ENV wins), as the command's environment. */
  env: Record<string, string>;
  user: string | undefined;
  workdir: string | undefined;
  mounts: RunMount[];
  network: RunNetwork;
  rootDisk: string;
  lower: Ext4Reader;
  scratchDir: string;
  cache: BuildCache;
  mtimeClampSec: number;
  settings: RunSandboxSettings;
  onOutput: (chunk: Buffer) => void;
  signal: AbortSignal;
}

/** Paths the sandbox itself creates or manages in the root: never layer content. */
const SANDBOX_PATHS = [
  "proc",
  "sys",
  "dev",
  "tmp",
  "run",
  "etc/hosts",
  "etc/hostname",
  "etc/resolv.conf",
];
const GUEST_CA_FILE = "etc/ssl/certs/wheellock-ca.crt";
const CA_BUNDLES = [
  "etc/ssl/certs/ca-certificates.crt",
  "etc/pki/tls/certs/ca-bundle.crt",
  "etc/ssl/cert.pem",
];

const rel = (p: string): string => p.replace(/^\/+/, "");

export interface RunOutcome {
  entries: LayerEntry[];
  /** Closes the kept disk and removes the step's scratch (after the layer is written). */
  release: () => Promise<void>;
}

export async function runStep(req: RunRequest): Promise<RunOutcome> {
  const { settings } = req;
  const work = await mkdtemp(join(req.scratchDir, "run-"));
  try {
    const mounts: Record<string, MountConfig> = {};
    const placeholders: Record<string, SecretOption> = {};
    const fileEnv: Record<string, string> = {};
    const secretsByDir = new Map<string, SecretMount[]>();
    /** Secret values this step's guest sees (files, env): what its cache mounts must not keep. */
    const guestSecrets: Needle[] = [];
    for (const m of req.mounts) {
      if (m.type === "secret") {
        const secret = settings.secrets[m.id];
        if (!secret) {
          if (m.required)
            throw new ErrBuild(
              `${req.what}: secret "${m.id}" was not given (--secret id=${m.id},...)`,
            );
          continue;
        }
        if (secret.hosts && secret.hosts.length > 0) {
          if (!m.env)
            throw new ErrBuild(
              `${req.what}: secret "${m.id}" is bound to hosts, so it reaches the step only as a placeholder: add env=NAME to its --mount`,
            );
          placeholders[m.env] = { value: secret.value, hosts: [...secret.hosts] };
          continue;
        }
        guestSecrets.push({
          label: `the value of secret "${m.id}"`,
          bytes: Buffer.from(secret.value),
        });
        if (m.env) fileEnv[m.env] = secret.value;
        if (m.target) {
          const dir = posix.dirname(m.target);
          secretsByDir.set(dir, [...(secretsByDir.get(dir) ?? []), m]);
        }
      } else if (m.type === "cache") mounts[m.target] = await cacheMount(req.cache, m);
      else
        mounts[m.target] = {
          type: "memory",
          ...(m.sizeBytes ? { quota: { sizeBytes: m.sizeBytes } } : {}),
        };
    }
    // Secret files: a private host directory per target directory, mounted read-only.
    for (const [dir, list] of secretsByDir) {
      const host = await mkdtemp(join(work, "secrets-"));
      for (const m of list) {
        await writeFile(
          join(host, posix.basename(m.target as string)),
          (settings.secrets[m.id] as BuildSecret).value,
          { mode: m.mode },
        );
      }
      const first = list[0] as SecretMount;
      mounts[dir] = {
        type: "host_fs",
        hostPath: host,
        readonly: true,
        owner: { uid: first.uid, gid: first.gid },
      };
    }
    const offline = req.network === "none";
    if (offline && Object.keys(placeholders).length > 0)
      throw new ErrBuild(
        `${req.what}: a secret bound to hosts needs the network; this step has --network=none`,
      );
    const intercept =
      !offline && (settings.allowHosts.length > 0 || Object.keys(placeholders).length > 0);
    const options: SandboxOptions = {
      image: "wheellock-build-step",
      ...(settings.cpus !== undefined ? { cpus: settings.cpus } : {}),
      memoryMb: settings.memoryMb ?? 1024,
      ...(settings.diskSizeMb !== undefined ? { diskSizeMb: settings.diskSizeMb } : {}),
      timeoutSeconds: 0,
      snapshot: false,
      // No network device at all, or the build's policy (policy options with none are refused).
      ...(offline
        ? { noNetwork: true }
        : {
            allowPrivateHosts: settings.allowPrivateHosts,
            ...(settings.allowHosts.length > 0 ? { allowedHosts: [...settings.allowHosts] } : {}),
            ...(Object.keys(placeholders).length > 0 ? { secrets: placeholders } : {}),
          }),
      ...(Object.keys(mounts).length > 0 ? { mounts } : {}),
    };
    const upperPath = join(work, "upper.ext4");
    const sandbox = await Sandbox.create(options, {
      image: { name: "wheellock-build-step", env: req.env, ext4Path: req.rootDisk },
      keepUpperDisk: upperPath,
    });
    let exitCode: number;
    try {
      const proc = sandbox.spawn(req.argv, {
        ...(Object.keys(fileEnv).length > 0 ? { env: fileEnv } : {}),
        ...(req.user !== undefined ? { user: req.user } : {}),
        cwd: req.workdir || "/",
      });
      proc.stdin.end();
      const abort = (): void => proc.kill("SIGKILL");
      // Ctrl-C while the VM was booting: the command is killed as soon as it started.
      if (req.signal.aborted) abort();
      req.signal.addEventListener("abort", abort, { once: true });
      try {
        for await (const chunk of proc) req.onOutput(chunk.data);
        exitCode = (await proc.wait()).exitCode;
      } finally {
        req.signal.removeEventListener("abort", abort);
      }
    } finally {
      await sandbox.close();
    }
    await checkCacheMounts(req, mounts, guestSecrets);
    if (req.signal.aborted) throw new ErrBuild("build interrupted");
    if (exitCode !== 0)
      throw new ErrBuild(`${req.what} failed: the command exited with code ${exitCode}`, {
        line: req.line,
        exitCode,
      });
    const upper = await Ext4Reader.open(upperPath, `${req.what}: the sandbox's writable disk`);
    const release = async (): Promise<void> => {
      await upper.close();
      await rm(work, { recursive: true, force: true });
    };
    try {
      const excluded = new Set([
        ...SANDBOX_PATHS,
        ...Object.keys(mounts).map(rel),
        ...req.mounts.flatMap((m) => (m.type === "secret" && m.target ? [rel(m.target)] : [])),
        ...(intercept ? [GUEST_CA_FILE] : []),
      ]);
      const entries = await diffUpper({
        upper,
        lower: req.lower,
        excluded,
        ...(intercept ? { caPem: await settings.caPem() } : {}),
        caBundles: CA_BUNDLES,
        mtimeClampSec: req.mtimeClampSec,
        what: req.what,
      });
      // File contents are read from the disk when the layer is written: `release` after that.
      return { entries, release };
    } catch (err) {
      await release();
      throw err;
    }
  } catch (err) {
    await rm(work, { recursive: true, force: true });
    throw err;
  }
}

/** A cache mount left holding a secret value is emptied, and the step fails. */
async function checkCacheMounts(
  req: RunRequest,
  mounts: Readonly<Record<string, MountConfig>>,
  guestSecrets: readonly Needle[],
): Promise<void> {
  for (const m of req.mounts) {
    if (m.type !== "cache" || m.readonly) continue;
    const mount = mounts[m.target];
    if (mount?.type !== "host_fs" || mount.hostPath === undefined) continue;
    const found = await findNeedlesInTree(mount.hostPath, guestSecrets);
    if (found === undefined) continue;
    await emptyDir(mount.hostPath);
    throw new ErrBuild(
      `${req.what}: the step left ${found} in its cache mount ${m.target}; the cache mount was emptied (a secret must not outlive its step)`,
      { line: req.line },
    );
  }
}

async function cacheMount(cache: BuildCache, m: CacheMount): Promise<MountConfig> {
  return {
    type: "host_fs",
    hostPath: await cache.mountDir(m.id, m.mode),
    readonly: m.readonly,
    owner: { uid: m.uid, gid: m.gid },
  };
}
