/**
 * What an SDK caller passes to create a sandbox, and the fully-defaulted form the rest of the
 * host code consumes. Units are in the names; every field is validated by
 * `resolveSandboxOptions`.
 */

import type { ApprovalDecision, BlockedRequest, Budgets } from "../observe/index.js";
import type { DiskConfig, ResolvedDisk } from "./disks.js";
import type { FileHookRule } from "../vfs/index.js";
import type { ForkMountsMode } from "./fork-mounts.js";
import type { MountConfig } from "./volumes.js";
import type { NetworkHookRule } from "./hook-rule.js";
import type { PolicyScriptSource } from "./policy-script-source.js";

/**
 * One credential the guest never sees: it gets a placeholder, the host swaps the value in —
 * only toward `hosts`, only over TLS (unless `allowHttp`), and only in `Authorization`,
 * `Proxy-Authorization`, the listed `headers` and (with `inQuery`) the query. A placeholder
 * anywhere else blocks the request.
 */
export interface SecretOption {
  /** The real value; never written to state files, logs, events or errors. */
  value: string;
  /**
   * Host globs (as in `allowedHosts`) the value may be sent to; at least one. An entry without
   * a port means port 443 (and 80 for plain HTTP with `allowHttp`); `host:port` that port.
   */
  hosts: string[];
  /**
   * More request headers the value goes into, besides `Authorization` and
   * `Proxy-Authorization` (case-insensitive), e.g. `["X-Api-Key"]`.
   */
  headers?: string[];
  /** Also replace the placeholder in the URL query (default: headers only). */
  inQuery?: boolean;
  /**
   * Also send the value over plain HTTP, where anyone on the path can read it. Default false:
   * a placeholder in a plain-HTTP request is blocked (`secret_requires_tls`).
   */
  allowHttp?: boolean;
  /**
   * The placeholder the guest sees instead of a random one (the reference's `placeholder`):
   * 8 to 256 printable ASCII characters without spaces, unlike the value and every other
   * secret's. Default: `SANDBOX_SECRET_` + 32 random hex digits, drawn per sandbox.
   */
  placeholder?: string;
}

/** How the VM is accelerated. `auto` uses KVM when it can boot a standard kernel, else TCG. */
export type AccelChoice = "auto" | "kvm" | "tcg";

export interface SandboxOptions {
  /**
   * OCI image reference (`alpine:3.20`, `ghcr.io/org/img@sha256:...`) or local tag.
   * Default: `$WHEELLOCK_IMAGE`, else `default` (the image `wheellock setup` builds locally).
   */
  image?: string;
  /**
   * Virtual CPUs; fractional values are allowed (`0.5`): the VM gets `ceil(cpus)` vCPUs and the
   * guest caps CPU time to the fraction. Finite, > 0, and `ceil(cpus)` at most the host's CPU
   * count. Default 1.
   */
  cpus?: number;
  /** Guest RAM in MiB. Integer >= 64. Default 512. */
  memoryMb?: number;
  /** Size of the writable root layer in MiB. Integer >= 64. Default 5120. */
  diskSizeMb?: number;
  /**
   * Lifetime limit in seconds from start: at the deadline the sandbox is stopped and pending
   * operations fail with ErrTimeout. `0` means no deadline. Finite, >= 0, at most
   * 2147483 (~24.8 days, the longest delay a Node timer can hold). Default 300.
   */
  timeoutSeconds?: number;
  /**
   * Environment for every exec in the sandbox (on top of the image's ENV). Names are non-empty
   * with no `=` or NUL; values have no NUL. Visible to anything in the guest: use secrets for
   * credentials, not this.
   */
  env?: Record<string, string>;
  /** Absolute guest path where commands start. Default: the image's WORKDIR, else `/`. */
  workdir?: string;
  /**
   * Guest user for commands: `uid`, `uid:gid`, `name` or `name:group` (syntax-checked on the
   * host; names are resolved in the guest). Default: the image's USER, else root.
   */
  user?: string;
  /**
   * Guest hostname: RFC 1123 labels (letters, digits, inner hyphens, <= 63 each) joined by dots,
   * at most 64 characters (Linux's limit). Default: the sandbox id.
   */
  hostname?: string;
  /**
   * Skip the in-guest hardening (seccomp filter, capability drop, no_new_privs). The VM
   * boundary still holds. Default false.
   */
  privileged?: boolean;
  /**
   * Start from a memory snapshot of an already booted VM with the same kernel, agent, image
   * and resources when one exists (and save one after a cold boot when none does). The
   * restored guest gets fresh entropy, clock and hostname. `false` forces a cold boot.
   * Default: true, unless `WHEELLOCK_NO_SNAPSHOT=1`.
   */
  snapshot?: boolean;
  /**
   * Start as a copy of this checkpoint (`sandbox.checkpoint(name)`, `wheellock checkpoint`)
   * instead of booting: its memory and disk as they were, with fresh entropy, clock, hostname
   * and id. Image and resources default to the checkpoint's; others refuse it. Mounts come
   * from the checkpoint (see `forkMounts`); giving `mounts` is refused. No disks.
   */
  fromCheckpoint?: string;
  /**
   * With `fromCheckpoint`: what the copy gets for the checkpoint's read-write host directory
   * mounts. `overlay` (default): a writable layer of its own over the directory; `readonly`:
   * writes fail (EROFS); `share`: it writes the host files, as the original did.
   */
  forkMounts?: ForkMountsMode;
  /** Accelerator. Default: `$WHEELLOCK_ACCEL`, else `auto`. */
  accel?: AccelChoice;
  /**
   * Path to a guest kernel (bzImage) to boot instead of the bundled one; relative paths are
   * resolved against the current directory. Default: `$WHEELLOCK_KERNEL`, else bundled.
   */
  kernel?: string;
  /**
   * What a node (`serve`) found at `kernel` when it checked the path (`dev:ino`): the file
   * opened for QEMU must be that one, so a swap after the check is refused.
   */
  kernelIdentity?: string;
  /** No network device at all: the guest sees only `lo`. Default false. */
  noNetwork?: boolean;
  /**
   * Let the guest reach private and special-purpose addresses (RFC 1918, loopback, link-local,
   * CGNAT, ...). The gateway address (10.0.2.2) then reaches the host's own loopback, which is
   * how tests reach servers they run on 127.0.0.1. Default false.
   */
  allowPrivateHosts?: boolean;
  /**
   * Host name -> IPv4 address, answered to the guest's DNS before the host resolver is asked
   * (`--resolve name:ip`). Names are case-insensitive. An address on host loopback is shown to
   * the guest as the gateway.
   */
  resolveOverrides?: Record<string, string>;
  /**
   * Host-backed filesystems, by absolute guest path: `{ "/workspace": { type: "host_fs",
   * hostPath: "/src", readonly: true } }`. Served by the host (FUSE over virtio-serial); the
   * guest cannot reach anything outside each host path. `overlay` mounts write to a
   * per-sandbox copy-on-write layer and never change the host. See `-v` for the CLI form.
   */
  mounts?: Record<string, MountConfig>;
  /**
   * ext4 images attached as virtio block devices and mounted by the guest: `[{ volume: "cache",
   * guestPath: "/cache" }]` or `[{ hostPath: "./data.ext4", guestPath: "/data", readonly: true }]`.
   * Data written to them outlives the sandbox. One sandbox at a time may attach an image
   * read-write (ErrVolumeInUse otherwise); any number may attach it read-only. See `--disk`.
   */
  disks?: DiskConfig[];
  /**
   * Rules run on every operation on `mounts`, by op and guest path glob: allow, block with an
   * errno, rewrite writes, or call your code before (may veto, fails closed) or after
   * (observes). Evaluated in order; the first `allow`/`block` that matches ends it. They also
   * apply to the SDK file methods on mounted paths. See docs/FILESYSTEM.md.
   * @example [{ ops: ["unlink", "rmdir"], path: "/workspace/**", action: "block" }]
   */
  fileHooks?: FileHookRule[];
  /**
   * Intercept mode's host allowlist: globs (`*.example.com`, `example.*`, `*`), exact names or
   * IPv4 addresses, each with an optional `:port`. Case-insensitive. Reference semantics: an
   * empty list allows every host (see `denyAllHosts`). Giving any entry turns interception on.
   */
  allowedHosts?: string[];
  /** Intercept mode, starting with every host denied until `allowHosts()` adds some. */
  denyAllHosts?: boolean;
  /**
   * Force intercept mode (TLS terminated by the host, HTTP checked and forwarded, other TCP
   * refused) even without an allowlist, secrets or hooks, e.g. to change the allowlist later.
   */
  networkIntercept?: boolean;
  /**
   * Secrets by environment variable name: every command gets `NAME=<placeholder>`, and the host
   * replaces the placeholder with the value only in TLS requests to the secret's hosts, in its
   * headers (see `SecretOption`); a placeholder headed anywhere else blocks the request. The
   * hosts join the allowlist.
   */
  secrets?: Record<string, SecretOption>;
  /** HTTP hook rules and callbacks, applied in order (intercept mode). */
  networkHooks?: readonly NetworkHookRule[];
  /** A JS/TS module (host path) exporting hooks, loaded on the host when the sandbox starts. */
  policyScript?: string;
  /**
   * A policy script's content instead of its path: what a node (`serve`) passes on, having
   * opened and read the file a remote caller named, so what it checked is what runs.
   */
  policyScriptSource?: PolicyScriptSource;
  /** Extra guest `/etc/hosts` lines: name -> IPv4 address. */
  addHosts?: Record<string, string>;
  /** DNS servers (`IPv4` or `IPv4:port`) the host asks for the guest's lookups, instead of its resolver. */
  dnsServers?: string[];
  /** PEM files of extra CAs trusted for upstream TLS (intercept mode), besides the system's. */
  upstreamCa?: string[];
  /**
   * Such CAs as PEM text instead of files: what a node (`serve`) passes on, having opened and
   * read the files a remote caller named, so what it checked is what is trusted.
   */
  upstreamCaPems?: string[];
  /** Raw-TCP rules `host:port` (globs allowed) passed through in intercept mode. */
  allowTcp?: string[];
  /**
   * Live approval (intercept mode): a request to a host outside the allowlist is held, not
   * refused, until it is decided — by `onBlockedRequest`, `sandbox.decideRequest()` or
   * `wheellock allow-list approve|deny` — or for `timeoutMs` (default 30000; then denied).
   * At most `maxPending` (default 16) wait at once. Private, loopback and metadata
   * addresses are never held. See docs/OBSERVE.md.
   */
  approval?: boolean | { timeoutMs?: number; maxPending?: number };
  /**
   * Decides held requests in this process (turns `approval` on): `"once"` lets this request
   * through, `"sandbox"` adds its `host:port` to the allowlist, `"deny"` refuses it,
   * `"deny-sandbox"` refuses it and every later request to its `host:port` unasked. A throw
   * denies. `ended` aborts when the request stops waiting otherwise (decided elsewhere, timed
   * out, its guest left): drop the question. Callbacks cannot go to a detached sandbox: use
   * `decideRequest` there.
   */
  onBlockedRequest?: (
    request: BlockedRequest,
    ended: AbortSignal,
  ) => ApprovalDecision | Promise<ApprovalDecision>;
  /**
   * Audit mode (turns interception on): requests the allowlist would refuse go through and
   * their events say so (`network.audit`); private addresses, secret scopes and hooks still
   * apply. With no allowlist every host is recorded. Feed the events to `suggestAllowlist`.
   */
  networkAudit?: boolean;
  /** Stop the sandbox once its network flows moved this many bytes (both directions). */
  maxEgressBytes?: number;
  /** Stop the sandbox once its VM used this much host CPU time (seconds). */
  maxCpuSeconds?: number;
  /** Refuse requests (403, `budget_exceeded`) beyond this many (intercept mode). */
  maxRequests?: number;
  /**
   * Send a W3C `traceparent` header with each intercepted request upstream, naming the
   * request's span (intercept mode; spans need an OpenTelemetry SDK in your program).
   */
  tracePropagation?: boolean;
}

/** A secret as the resolved config keeps it: everything but the value. */
export interface ResolvedSecret {
  readonly name: string;
  readonly hosts: readonly string[];
  /** The user's extra headers (Authorization and Proxy-Authorization always apply). */
  readonly headers: readonly string[];
  readonly inQuery: boolean;
  readonly allowHttp: boolean;
  /** The caller's placeholder, if one was given (it is what the guest sees, not a secret). */
  readonly placeholder?: string;
}

/** `SandboxOptions` with every default applied and every value checked. Frozen. */
export interface ResolvedSandboxConfig {
  /** Generated (`vm-` + 8 hex digits); callers cannot choose it. */
  readonly id: string;
  readonly image: string;
  readonly cpus: number;
  /** `ceil(cpus)`: the number of vCPUs QEMU is given. */
  readonly vcpuCount: number;
  readonly memoryMb: number;
  readonly diskSizeMb: number;
  /** 0 = no deadline. */
  readonly timeoutSeconds: number;
  readonly env: Readonly<Record<string, string>>;
  /** Undefined: the image decides (WORKDIR, else `/`). */
  readonly workdir: string | undefined;
  /** Undefined: the image decides (USER, else root). */
  readonly user: string | undefined;
  readonly hostname: string;
  readonly privileged: boolean;
  readonly snapshot: boolean;
  /** The checkpoint this sandbox starts as a copy of. */
  readonly fromCheckpoint?: string;
  readonly accel: AccelChoice;
  /** Absolute path; undefined: the bundled kernel. */
  readonly kernel: string | undefined;
  /** `dev:ino` the kernel opened for QEMU must have (a node checked it). */
  readonly kernelIdentity: string | undefined;
  readonly noNetwork: boolean;
  readonly allowPrivateHosts: boolean;
  /** Lower-case names. */
  readonly resolveOverrides: Readonly<Record<string, string>>;
  /** Extra disks in attach order (the guest finds disk i by serial `wl-disk<i>`). */
  readonly disks: readonly ResolvedDisk[];
  /** True when the network goes through the intercepting proxy (see `networkIntercept`). */
  readonly networkIntercept: boolean;
  /** The user's entries followed by every secret's hosts, without duplicates. */
  readonly allowedHosts: readonly string[];
  readonly denyAllHosts: boolean;
  /** Names and hosts only: the values stay with the caller's options. */
  readonly secrets: readonly ResolvedSecret[];
  readonly networkHookCount: number;
  /** Absolute path. */
  readonly policyScript: string | undefined;
  /** The script as content (a node read it); exclusive with `policyScript`. */
  readonly policyScriptSource: PolicyScriptSource | undefined;
  /** Lower-case names. */
  readonly addHosts: Readonly<Record<string, string>>;
  readonly dnsServers: readonly string[];
  /** Absolute paths. */
  readonly upstreamCa: readonly string[];
  /** PEM texts (a node read them). */
  readonly upstreamCaPems: readonly string[];
  readonly allowTcp: readonly string[];
  /** Live approval: off, or on with its bounds. */
  readonly approval: {
    readonly enabled: boolean;
    readonly timeoutMs: number;
    readonly maxPending: number;
  };
  readonly networkAudit: boolean;
  readonly budgets: Readonly<Budgets>;
  readonly tracePropagation: boolean;
}

/**
 * Every key of SandboxOptions, to refuse the ones it does not have: a misspelt option (`disk`
 * for `disks`) would otherwise start a sandbox without what it asked for.
 */
export const SANDBOX_OPTION_KEYS = [
  "image",
  "cpus",
  "memoryMb",
  "diskSizeMb",
  "timeoutSeconds",
  "env",
  "workdir",
  "user",
  "hostname",
  "privileged",
  "snapshot",
  "fromCheckpoint",
  "forkMounts",
  "accel",
  "kernel",
  "kernelIdentity",
  "noNetwork",
  "allowPrivateHosts",
  "resolveOverrides",
  "mounts",
  "disks",
  "fileHooks",
  "allowedHosts",
  "denyAllHosts",
  "networkIntercept",
  "secrets",
  "networkHooks",
  "policyScript",
  "policyScriptSource",
  "addHosts",
  "dnsServers",
  "upstreamCa",
  "upstreamCaPems",
  "allowTcp",
  "approval",
  "onBlockedRequest",
  "networkAudit",
  "maxEgressBytes",
  "maxCpuSeconds",
  "maxRequests",
  "tracePropagation",
] as const satisfies readonly (keyof SandboxOptions)[];

// Fails to compile when SandboxOptions gains a key the list above does not have.
type UnlistedOptionKey = Exclude<keyof SandboxOptions, (typeof SANDBOX_OPTION_KEYS)[number]>;
const everyOptionListed: [UnlistedOptionKey] extends [never] ? true : UnlistedOptionKey = true;
void everyOptionListed;
