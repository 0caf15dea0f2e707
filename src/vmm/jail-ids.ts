import { randomInt } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { ErrSetup } from "../errors.js";
import { makePrivateDir, runDir } from "../paths.js";
import { processStartTicks, sameProcessAlive } from "../util/index.js";

/**
 * User and group ids for jailed QEMUs: 0x70000000 + slot, slot 1..65535 (uid = gid). The
 * range lies past the ranges systemd hands to containers (which end at 0x6FFFFFFF) and below
 * 2^31, where tools that treat ids as signed misbehave. Slot 0's id is the group of snapshot
 * RAM files (SNAPSHOT_RAM_GID), never a user.
 */
export const JAIL_ID_BASE = 0x7000_0000;
export const JAIL_SLOTS = 65_536;

/**
 * One claim file per id in use, holding the claiming process's pid and start time, so two
 * wheellock processes never give two QEMUs the same id. A claim whose process is gone is
 * stale and taken over (its QEMUs died with it: parent-death signal). Under /run when it
 * exists, so every wheellock process on the host shares it whatever its data dir.
 */
function claimsDir(): string {
  return existsSync("/run") ? "/run/wheellock/jail-ids" : join(runDir(), ".jail-ids");
}

export interface JailId {
  id: number;
  release(): void;
}

const MAX_TRIES = 256;

export function claimJailId(): JailId {
  const dir = claimsDir();
  makePrivateDir(dir);
  const owner = `${process.pid} ${processStartTicks(process.pid) ?? 0}\n`;
  for (let tries = 0; tries < MAX_TRIES; tries++) {
    const id = JAIL_ID_BASE + randomInt(1, JAIL_SLOTS);
    const path = join(dir, String(id));
    let fd: number;
    try {
      fd = openSync(path, "wx", 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      if (claimIsStale(path)) unlinkSync(path);
      continue;
    }
    try {
      writeSync(fd, owner);
    } finally {
      closeSync(fd);
    }
    let released = false;
    return {
      id,
      release() {
        if (released) return;
        released = true;
        try {
          unlinkSync(path);
        } catch {
          // already taken over as stale; nothing else to undo
        }
      },
    };
  }
  throw new ErrSetup(`no free QEMU user id in ${dir} after ${MAX_TRIES} tries`);
}

function claimIsStale(path: string): boolean {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return false; // removed meanwhile: the next try may pick it
  }
  const [pid, ticks] = text.trim().split(" ").map(Number);
  // An empty claim is one being written right now.
  if (!text.includes("\n") || pid === undefined) return false;
  return !sameProcessAlive(pid, ticks ?? 0);
}
