/**
 * Runs one user callback with a deadline. Unlike the reference (which ignores a failed callback
 * and lets the request through), a throw or a timeout fails closed: the caller blocks.
 */
export type HookOutcome<T> = { ok: true; result: T } | { ok: false; reason: string };

/** One line, bounded: user error messages end up in events. */
function oneLine(text: string, max = 200): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > max ? `${line.slice(0, max)}…` : line;
}

export async function runHook<C, T>(
  label: string,
  timeoutMs: number,
  makeContext: (signal: AbortSignal) => C,
  hook: (ctx: C) => T | Promise<T>,
): Promise<HookOutcome<T>> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  try {
    const run = Promise.resolve().then(() => hook(makeContext(controller.signal)));
    // A hook that rejects after its deadline must not become an unhandled rejection.
    run.catch(() => undefined);
    const winner = await Promise.race([run.then((result) => ({ result })), deadline]);
    if (winner === "timeout") {
      controller.abort(new Error(`hook rule ${label} timed out`));
      return { ok: false, reason: `hook rule ${label} timed out after ${timeoutMs} ms` };
    }
    return { ok: true, result: winner.result };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { ok: false, reason: `hook rule ${label} failed: ${oneLine(message)}` };
  } finally {
    clearTimeout(timer);
  }
}
