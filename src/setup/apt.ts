import { existsSync } from "node:fs";
import { isAbsolute } from "node:path";
import { ErrSetup } from "../errors.js";
import { runTool, outputTail, type RunToolResult } from "../util/index.js";
import { findExecutable } from "../util/index.js";

export interface HostPackage {
  /** Debian/Ubuntu package name. */
  pkg: string;
  /** What proves the package is installed: a command name looked up in PATH (and sbin), or an absolute file path. */
  provides: string;
}

/** The host lookups, injectable so tests can play a non-root user or a machine without apt. */
export interface AptDeps {
  uid: () => number;
  isProvided: (provides: string) => boolean;
  run: (argv: readonly string[], env: NodeJS.ProcessEnv) => Promise<RunToolResult>;
}

const defaultDeps: AptDeps = {
  uid: () => process.getuid?.() ?? 0,
  isProvided: (provides) =>
    isAbsolute(provides) ? existsSync(provides) : findExecutable(provides) !== undefined,
  run: (argv, env) => runTool(argv, { env }),
};

/** The packages whose `provides` is absent. */
export function missingPackages(
  packages: readonly HostPackage[],
  deps: Pick<AptDeps, "isProvided"> = defaultDeps,
): HostPackage[] {
  return packages.filter((p) => !deps.isProvided(p.provides));
}

/**
 * Installs the host packages that are missing, with apt-get. A no-op (a few stat calls) when all
 * are present. Not root: nothing is installed; the error names the packages and the sudo command,
 * because silently calling sudo would prompt for a password in the middle of a library call.
 */
export async function ensureHostPackages(
  packages: readonly HostPackage[],
  log: (m: string) => void,
  deps: AptDeps = defaultDeps,
): Promise<void> {
  const missing = missingPackages(packages, deps);
  if (missing.length === 0) return;
  const names = unique(missing.map((p) => p.pkg));
  const installCmd = `apt-get install -y ${names.join(" ")}`;
  if (deps.uid() !== 0) {
    throw new ErrSetup(
      `missing host packages: ${names.join(", ")}; install them with: sudo ${installCmd}`,
    );
  }
  if (!deps.isProvided("apt-get")) {
    throw new ErrSetup(
      `missing host packages: ${names.join(", ")}; apt-get not found, install the equivalents with your package manager`,
    );
  }
  const env: NodeJS.ProcessEnv = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = ["apt-get", "install", "-y", "-q", ...names];
  log(`installing host packages: ${names.join(" ")}`);
  let res = await deps.run(install, env);
  if (res.code !== 0 && needsUpdate(res)) {
    // Fresh machines and containers often ship without package lists; update only then, since an
    // update costs seconds to minutes and touches the network.
    log("apt package lists missing or stale; running apt-get update");
    const upd = await deps.run(["apt-get", "update", "-q"], env);
    if (upd.code !== 0)
      throw new ErrSetup(`apt-get update failed (exit ${upd.code}): ${outputTail(upd)}`);
    res = await deps.run(install, env);
  }
  if (res.code !== 0)
    throw new ErrSetup(
      `apt-get install ${names.join(" ")} failed (exit ${res.code}): ${outputTail(res)}`,
    );
  const still = missingPackages(packages, deps);
  if (still.length > 0) {
    throw new ErrSetup(
      `installed ${names.join(", ")} but still missing: ${still.map((p) => `${p.provides} (from ${p.pkg})`).join(", ")}`,
    );
  }
}

/** apt's ways of saying it has no (current) package lists. */
function needsUpdate(res: RunToolResult): boolean {
  const text = `${res.stderr}\n${res.stdout}`;
  return /Unable to locate package|has no installation candidate|Unable to fetch some archives|404\s+Not Found|Failed to fetch/i.test(
    text,
  );
}

function unique(xs: readonly string[]): string[] {
  return [...new Set(xs)];
}
