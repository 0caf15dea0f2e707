import { createHash } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { ErrSetup } from "../errors.js";
import { makePrivateDir, packageRoot } from "../paths.js";
import { withFileLock } from "../util/index.js";
import { runToolOk } from "../util/index.js";
import { findExecutable } from "../util/index.js";
import { filesIdentity, readStatMemo, writeStatMemo } from "../stat-memo.js";

const AGENT_NAME = "wheellock-agent";

/** The files that make up the agent build: all of guest/'s sources plus its Makefile. */
function sourceFiles(guestDir: string): string[] {
  const names = readdirSync(guestDir);
  return names.filter((n) => n === "Makefile" || n.endsWith(".c") || n.endsWith(".h")).sort();
}

/**
 * Content hash of the agent sources, so an edit produces a new binary without a clean step.
 * Every sandbox start needs it: unchanged files (same stat identity, stat-memo.ts) are not
 * read and hashed again.
 */
export async function agentSourceHash(guestDir: string): Promise<string> {
  const names = sourceFiles(guestDir);
  const identity = filesIdentity([guestDir, ...names.map((n) => join(guestDir, n))]);
  const memo = identity !== undefined ? readStatMemo("agent-source-hash", identity) : undefined;
  if (memo !== undefined) return memo;
  const hash = createHash("sha256");
  for (const name of names) {
    const data = await readFile(join(guestDir, name));
    hash.update(`${name}\0${data.length}\0`);
    hash.update(data);
  }
  const digest = hash.digest("hex");
  if (identity !== undefined) writeStatMemo("agent-source-hash", identity, digest);
  return digest;
}

/**
 * Builds guest/ with musl-gcc into `<cacheDir>/agent/<sha256 of sources>/wheellock-agent` and
 * returns that path. Unchanged sources: a hash of a few files, no compiler run.
 */
export async function ensureGuestAgent(
  cacheDir: string,
  log: (msg: string) => void,
): Promise<string> {
  const guestDir = join(packageRoot(), "guest");
  if (!existsSync(join(guestDir, "Makefile")))
    throw new ErrSetup(`guest agent sources not found in ${guestDir}`);
  const hash = await agentSourceHash(guestDir);
  const dir = join(cacheDir, "agent", hash);
  const binary = join(dir, AGENT_NAME);
  if (existsSync(binary)) return binary;

  if (!findExecutable("musl-gcc"))
    throw new ErrSetup("musl-gcc not found (package musl-tools); run: wheellock setup");
  if (!findExecutable("make"))
    throw new ErrSetup("make not found (package make); install it to build the guest agent");
  makePrivateDir(join(cacheDir, "agent"));
  return withFileLock(
    join(cacheDir, "agent", `.${hash}.lock`),
    { timeoutMs: 5 * 60_000 },
    async () => {
      if (existsSync(binary)) return binary;
      // Objects go to a private dir: guest/ may be read-only (an installed package) and two
      // builds must not share object files.
      const work = join(cacheDir, "agent", `.build-${process.pid}-${Date.now()}`);
      makePrivateDir(work);
      try {
        log("building the guest agent");
        await runToolOk(
          ["make", "-s", "-C", guestDir, `BUILD=${work}`],
          (m, cause) => new ErrSetup(`guest agent build failed: ${m}`, { cause }),
        );
        makePrivateDir(dir);
        await rename(join(work, AGENT_NAME), binary);
        return binary;
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    },
  );
}
