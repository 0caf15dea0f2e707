import { createWriteStream } from "node:fs";
import { once } from "node:events";
import type { SandboxEvent } from "./events.js";

/**
 * Appends every event of `events` to `path` as one JSON line each (`--events FILE`), until
 * the iterator ends (the sandbox closed). Resolves once everything is on disk. The file is
 * created 0600: URLs and commands can be private even though secret values never appear.
 */
export async function writeEventsFile(
  events: AsyncIterable<SandboxEvent>,
  path: string,
): Promise<void> {
  const out = createWriteStream(path, { flags: "a", mode: 0o600 });
  await once(out, "open");
  try {
    for await (const event of events) {
      if (!out.write(`${JSON.stringify(event)}\n`)) await once(out, "drain");
    }
  } finally {
    out.end();
    await once(out, "finish").catch(() => undefined);
  }
}
