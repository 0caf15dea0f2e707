import type { PullProgress } from "../image/index.js";

const MB = 1024 * 1024;

/**
 * Per-layer progress lines on a TTY (redrawn in place, at most every 100 ms); nothing when stderr
 * is not a terminal, so logs and pipes stay clean.
 */
export function terminalProgress(
  label: string,
  out: NodeJS.WriteStream = process.stderr,
): PullProgress | undefined {
  if (!out.isTTY) return undefined;
  const layers = new Map<string, { size: number; done: number; state: string }>();
  let drawn = 0;
  let last = 0;
  let status = "";
  const draw = (force = false): void => {
    const now = Date.now();
    if (!force && now - last < 100) return;
    last = now;
    const width = Math.max(10, Math.min(40, (out.columns ?? 80) - 50));
    const lines = [`${label}${status ? `: ${status}` : ""}`];
    for (const [digest, l] of layers) {
      const frac = l.size > 0 ? Math.min(1, l.done / l.size) : 1;
      const bar = "#".repeat(Math.round(frac * width)).padEnd(width, ".");
      lines.push(
        `  ${digest.slice(7, 19)} [${bar}] ${(l.done / MB).toFixed(1)}/${(l.size / MB).toFixed(1)} MB ${l.state}`,
      );
    }
    out.write(`${drawn > 0 ? `\x1b[${drawn}A` : ""}${lines.map((x) => `\x1b[2K${x}\n`).join("")}`);
    drawn = lines.length;
  };
  return {
    layer(digest, size, cached, note) {
      const state = cached ? (note ?? "cached") : "";
      layers.set(digest, { size, done: cached ? size : 0, state });
      draw(true);
    },
    bytes(digest, n) {
      const l = layers.get(digest);
      if (l) l.done += n;
      draw();
    },
    layerDone(digest) {
      const l = layers.get(digest);
      if (l && l.state === "") l.state = "done";
      draw(true);
    },
    status(message) {
      status = message;
      draw(true);
    },
  };
}
