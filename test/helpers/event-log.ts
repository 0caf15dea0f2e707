// Recording a sandbox's events in the background, and waiting for one with a deadline: a test
// that pulls `events().next()` in a loop spins forever (at 100% CPU, starving even the
// file's exit timer) once the stream ends, and waits forever for an event that never comes.
import type { SandboxEvent } from "../../src/index.js";
import { waitUntil } from "./lifecycle.js";

export interface EventLog {
  /** Every event so far, in order. */
  readonly events: readonly SandboxEvent[];
  /** True once the stream ended (the sandbox stopped). */
  readonly ended: boolean;
  /** Stops recording. */
  stop(): Promise<void>;
}

export function recordEvents(source: { events(): AsyncIterableIterator<SandboxEvent> }): EventLog {
  const events: SandboxEvent[] = [];
  const iterator = source.events();
  let ended = false;
  const done = (async () => {
    for await (const event of iterator) events.push(event);
    ended = true;
  })();
  return {
    events,
    get ended() {
      return ended;
    },
    async stop() {
      await iterator.return?.();
      await done;
    },
  };
}

/**
 * The first recorded event that `match` accepts, waiting up to `timeoutMs` for it. Fails at
 * once, naming what the stream did carry, if the stream ends without one.
 */
export async function waitForEvent(
  log: EventLog,
  what: string,
  match: (event: SandboxEvent) => boolean,
  timeoutMs = 60_000,
): Promise<SandboxEvent> {
  let found: SandboxEvent | undefined;
  await waitUntil(
    what,
    () => {
      found = log.events.find(match);
      if (found === undefined && log.ended)
        throw new Error(
          `the event stream ended before ${what}; it carried: ` +
            (log.events.map((e) => e.type).join(", ") || "nothing"),
        );
      return found !== undefined;
    },
    timeoutMs,
  );
  return found as SandboxEvent;
}
