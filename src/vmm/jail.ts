import { chmodSync, chownSync, statSync, type Stats } from "node:fs";
import { ErrSetup } from "../errors.js";
import { findExecutable } from "../util/index.js";
import type { Accel } from "./accel.js";
import { claimJailId, JAIL_ID_BASE } from "./jail-ids.js";

/**
 * Run as root, wheellock starts every QEMU as a user of its own (a jailer in the spirit of
 * Firecracker's): a fresh uid/gid from a reserved range (jail-ids.ts), no supplementary
 * groups but the few it needs, no capabilities, no way to regain any, in network and IPC
 * namespaces of its own (it has no use for either: its sockets are inherited). Everything it uses is
 * handed over as a descriptor (qemu-args.ts), so it needs no access to the run dir, the data
 * dir or the cache, which stay 0700 root, and it cannot reach another sandbox's files or
 * processes. Run as anyone else, QEMU runs as that user, as before; QEMU's seccomp filter
 * applies either way.
 */

/** Group of snapshot RAM files: QEMU 7.2 opens a file it maps copy-on-write read-write. */
export const SNAPSHOT_RAM_GID = JAIL_ID_BASE;

export interface QemuJail {
  uid: number;
  gid: number;
  groups: number[];
  release(): void;
}

export function jailNeeded(): boolean {
  return process.geteuid?.() === 0;
}

export interface JailNeeds {
  accel: Accel;
  /** The VM maps a snapshot's RAM file (group SNAPSHOT_RAM_GID). */
  mapsSnapshotRam: boolean;
}

export function acquireJail(needs: JailNeeds): QemuJail {
  const groups = [
    ...(needs.accel === "kvm" ? kvmGroups(statSync("/dev/kvm")) : []),
    ...(needs.mapsSnapshotRam ? [SNAPSHOT_RAM_GID] : []),
  ];
  const claim = claimJailId();
  return { uid: claim.id, gid: claim.id, groups, release: () => claim.release() };
}

/**
 * The supplementary groups a jailed QEMU needs to open /dev/kvm (QEMU 7.2 opens it by that
 * path): none when it is open to everyone, its group when that group may read and write it.
 */
export function kvmGroups(kvm: Pick<Stats, "mode" | "gid">): number[] {
  if ((kvm.mode & 0o006) === 0o006) return [];
  if ((kvm.mode & 0o060) === 0o060) return [kvm.gid];
  throw new ErrSetup(
    "/dev/kvm is open to root only, so the unprivileged QEMU cannot use it: " +
      "give it a group with read-write access (e.g. `chgrp kvm /dev/kvm; chmod 660 /dev/kvm`) or use --accel tcg",
  );
}

/** setpriv options that turn the process into the jail's user. */
export function setprivJailArgs(jail: QemuJail): string[] {
  return [
    "--reuid",
    String(jail.uid),
    "--regid",
    String(jail.gid),
    ...(jail.groups.length > 0 ? ["--groups", jail.groups.join(",")] : ["--clear-groups"]),
    "--inh-caps",
    "-all",
    "--bounding-set",
    "-all",
    "--no-new-privs",
  ];
}

/**
 * A util-linux tool from the system directories only: not through PATH, so when wheellock
 * runs as root no PATH entry decides what starts (and jails) QEMU.
 */
export function findTool(name: "setpriv" | "unshare"): string | undefined {
  return findExecutable(name, "");
}

/**
 * `command` in new network and IPC namespaces (unshare execs, no fork: the pid stays the
 * one we spawned), as the jail's user, with the parent-death signal set after the switch
 * (a uid change clears it).
 */
export function jailedCommand(jail: QemuJail, command: string[]): string[] {
  const unshare = findTool("unshare");
  const setpriv = findTool("setpriv");
  if (!unshare || !setpriv) {
    throw new ErrSetup(
      "setpriv and unshare (util-linux) are needed to run QEMU unprivileged as root",
    );
  }
  return [
    unshare,
    "--net",
    "--ipc",
    "--",
    setpriv,
    ...setprivJailArgs(jail),
    "--pdeathsig",
    "KILL",
    "--",
    ...command,
  ];
}

/** Whether `who` may open a file with these owner and mode bits (POSIX permission check). */
export function mayOpen(
  file: Pick<Stats, "mode" | "uid" | "gid">,
  who: Pick<QemuJail, "uid" | "gid" | "groups">,
  write: boolean,
): boolean {
  const wanted = write ? 0o6 : 0o4;
  let shift = 0;
  if (file.uid === who.uid) shift = 6;
  else if (file.gid === who.gid || who.groups.includes(file.gid)) shift = 3;
  return ((file.mode >> shift) & wanted) === wanted;
}

/**
 * Makes a snapshot's RAM file usable by jailed QEMUs that restore from it: owner root, group
 * SNAPSHOT_RAM_GID read-write (see SNAPSHOT_RAM_GID). It stays reachable only through the
 * descriptor a restoring QEMU inherits: the snapshot directory is 0700 root.
 */
export function shareSnapshotRam(path: string): void {
  if (!jailNeeded()) return;
  chownSync(path, 0, SNAPSHOT_RAM_GID);
  chmodSync(path, 0o660);
}
