/** `--events FILE`: a sandbox's events appended as JSON lines to a 0600 file. */
import { createWriteStream, type WriteStream } from "node:fs";
import { once } from "node:events";
import { ErrInvalidConfig } from "../errors.js";
import type { SandboxEvent } from "./events.js";

/**
 * Opens `path` for appending events (`--events FILE`), created 0600: URLs and commands can be
 * private even though secret values never appear. Opened before the sandbox starts, so a path
 * that cannot be written is a one-line configuration error, not a crash after boot.
 */
export async function openEventsFile(path: string): Promise<WriteStream> {
  const out = createWriteStream(path, { flags: "a", mode: 0o600 });
  try {
    await once(out, "open");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ErrInvalidConfig(`--events: cannot open ${path}: ${code}`);
  }
  return out;
}

/**
 * Appends every event of `events` to `out` (from openEventsFile) as one JSON line each, until
 * the iterator ends (the sandbox closed). Resolves once everything is on disk.
 */
export async function writeEventsFile(
  events: AsyncIterable<SandboxEvent>,
  out: WriteStream,
): Promise<void> {
  try {
    for await (const event of events) {
      if (!out.write(`${JSON.stringify(event)}\n`)) await once(out, "drain");
    }
  } finally {
    out.end();
    await once(out, "finish").catch(() => undefined);
  }
}
