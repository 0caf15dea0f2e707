import { Command } from "commander";
import { createReadStream, existsSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join, posix, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { ErrInvalidConfig } from "../errors.js";
import { exitOnSignalDuring, parseNodeSandboxId } from "../util/index.js";
import { addRemoteOption, connectSandbox, type RemoteFlags } from "./remote-flags.js";
import { copyTreeIn, copyTreeOut } from "./cp-tree.js";
import { copyGuestFileOut } from "./cp-file-out.js";

interface Location {
  id?: string;
  path: string;
}

/** `ID:/guest/path` (ID may name its node: `vm-...@node`) is a sandbox path; else a host path. */
function parseLocation(text: string): Location {
  const colon = text.indexOf(":");
  if (colon > 0 && parseNodeSandboxId(text.slice(0, colon))) {
    const path = text.slice(colon + 1);
    if (!path.startsWith("/")) throw new ErrInvalidConfig(`guest path must be absolute: ${text}`);
    return { id: text.slice(0, colon), path };
  }
  return { path: text };
}

/** `--mode 644` / `0755`: permission bits in octal, checked before anything is copied. */
function parseMode(text: string): number {
  if (!/^[0-7]{1,4}$/.test(text)) {
    throw new ErrInvalidConfig(`invalid --mode "${text}": expected octal permission bits like 644`);
  }
  return Number.parseInt(text, 8);
}

export function cpCommand(): Command {
  const cmd = new Command("cp")
    .usage("SRC DEST   (one of them ID:/path; - is stdin or stdout)")
    .argument("<src>")
    .argument("<dest>")
    .option("--mode <octal>", "permission bits of a file written into the sandbox (default 0644)");
  return addRemoteOption(cmd).action(
    async (srcText: string, destText: string, flags: { mode?: string } & RemoteFlags) => {
      const src = parseLocation(srcText);
      const dest = parseLocation(destText);
      const explicitMode = flags.mode !== undefined ? parseMode(flags.mode) : undefined;
      if ((src.id === undefined) === (dest.id === undefined)) {
        throw new ErrInvalidConfig("exactly one of SRC and DEST must be ID:/path");
      }
      if (dest.id !== undefined) {
        const sandbox = await connectSandbox(dest.id, flags);
        let target = dest.path;
        if (target.endsWith("/") && src.path !== "-")
          target = posix.join(target, basename(src.path));
        if (src.path !== "-" && statSync(src.path).isDirectory()) {
          // Into an existing directory, like cp -r: DEST/basename(SRC).
          const existing = await sandbox.stat(target).catch(() => undefined);
          if (existing?.isDir) target = posix.join(target, basename(src.path));
          await copyTreeIn(sandbox, src.path, target);
          return;
        }
        const mode =
          explicitMode !== undefined
            ? explicitMode
            : src.path === "-"
              ? undefined
              : statSync(src.path).mode & 0o777;
        const input = src.path === "-" ? process.stdin : createReadStream(src.path);
        await sandbox.writeFile(target, input, mode !== undefined ? { mode } : {});
        return;
      }
      if (dest.path !== "-" && !existsSync(dirname(resolve(dest.path)))) {
        throw new ErrInvalidConfig(`no such host directory: ${dirname(resolve(dest.path))}`);
      }
      const sandbox = await connectSandbox(src.id as string, flags);
      let destPath = dest.path;
      if (destPath !== "-" && existsSync(destPath) && statSync(destPath).isDirectory()) {
        destPath = join(destPath, posix.basename(src.path));
      }
      const source = destPath === "-" ? undefined : await sandbox.stat(src.path);
      if (source?.isDir) {
        await copyTreeOut(sandbox, src.path, destPath, source.mode);
        return;
      }
      if (destPath === "-") {
        await pipeline(sandbox.readFileStream(src.path), process.stdout, { end: false });
        return;
      }
      // A temp file renamed at the end: a failed copy never truncates an existing file, and
      // one stopped by Ctrl-C (or SIGTERM, SIGHUP) leaves nothing behind.
      const temp = `${destPath}.wheellock-${process.pid}.tmp`;
      const removeTemp = () => rmSync(temp, { force: true });
      const size = source?.sizeBytes ?? 0;
      try {
        await exitOnSignalDuring(async () => {
          await copyGuestFileOut(sandbox, src.path, temp, {
            sizeBytes: size,
            mode: 0o644,
            exclusive: true,
          });
          renameSync(temp, destPath);
        }, removeTemp);
      } finally {
        removeTemp();
      }
    },
  );
}
