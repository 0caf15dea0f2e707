import {
  closeSync,
  fsyncSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { ErrVMNotFound } from "../errors.js";
import { isSandboxId, removeTreeSync, sameProcessAlive } from "../util/index.js";
import {
  LIVE_STATUSES,
  sandboxDir,
  sandboxesDir,
  statePath,
  type SandboxRecord,
} from "./record.js";
import { makePrivateDir } from "../paths.js";

let tempCounter = 0;

/**
 * Writes the record so that a reader (or a crash at any instant) sees either the old file or
 * the new one, never a torn one: write a unique temp file, fsync it, rename it over, fsync the
 * directory. Unique temp names let concurrent writers race without corrupting each other.
 */
export function writeRecord(record: SandboxRecord): void {
  const path = statePath(record.id);
  const dir = dirname(path);
  makePrivateDir(dir);
  const temp = `${path}.${process.pid}.${tempCounter++}.tmp`;
  const fd = openSync(temp, "w", 0o600);
  try {
    writeSync(
      fd,
      `${JSON.stringify({ ...record, updatedAt: new Date().toISOString() }, null, 2)}\n`,
    );
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(temp, path);
  } catch (err) {
    unlinkSync(temp);
    throw err;
  }
  const dirFd = openSync(dir, "r");
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

function parseRecord(text: string): SandboxRecord | undefined {
  try {
    const value = JSON.parse(text) as Partial<SandboxRecord>;
    if (typeof value.id !== "string" || typeof value.status !== "string") return undefined;
    return value as SandboxRecord;
  } catch {
    return undefined;
  }
}

/** The record as stored, without reconciling; undefined when there is none. */
export function loadRecord(id: string): SandboxRecord | undefined {
  if (!isSandboxId(id)) return undefined;
  try {
    return parseRecord(readFileSync(statePath(id), "utf8"));
  } catch {
    return undefined;
  }
}

/**
 * The truth about a record: a live status whose supervisor is gone becomes `crashed`, and that
 * is persisted so every later reader agrees.
 */
export function reconcile(record: SandboxRecord): SandboxRecord {
  if (!LIVE_STATUSES.has(record.status)) return record;
  if (sameProcessAlive(record.supervisorPid, record.supervisorStartTicks ?? 0)) return record;
  const crashed: SandboxRecord = {
    ...record,
    status: "crashed",
    lastError: record.lastError ?? `supervisor (pid ${record.supervisorPid}) is gone`,
  };
  try {
    // Re-check just before writing: the supervisor may have finished cleanly meanwhile.
    const latest = loadRecord(record.id);
    if (latest && !LIVE_STATUSES.has(latest.status)) return latest;
    writeRecord(crashed);
  } catch {
    // Reading must work even where we cannot write (another user's data dir, full disk).
  }
  return crashed;
}

/** The reconciled record, or ErrVMNotFound. */
export function getRecord(id: string): SandboxRecord {
  const record = loadRecord(id);
  if (!record) throw new ErrVMNotFound(id);
  return reconcile(record);
}

/** All records, reconciled, newest first. Unreadable or half-created entries are skipped. */
export function listRecords(): SandboxRecord[] {
  let ids: string[];
  try {
    ids = readdirSync(sandboxesDir()).filter(isSandboxId);
  } catch {
    return [];
  }
  const records: SandboxRecord[] = [];
  for (const id of ids) {
    const record = loadRecord(id);
    if (record) records.push(reconcile(record));
  }
  return records.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || a.id.localeCompare(b.id));
}

/** Deletes a sandbox's record directory (state and logs). */
export function removeRecordDir(id: string): void {
  removeTreeSync(sandboxDir(id));
}
