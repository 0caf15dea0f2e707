/**
 * Build progress: per-step events, printed like `docker build --progress=plain` (`#3 [2/5]
 * RUN make`, output lines prefixed with the step and its elapsed seconds, `#3 DONE 1.2s`,
 * `#3 CACHED`), or on a terminal as one line per finished step plus one live line for the
 * running step (its last output line and a timer). A failed step's output tail is shown in
 * both, so the reason is on screen.
 */
import { StringDecoder } from "node:string_decoder";

export interface BuildProgress {
  /** A step begins; `label` is `[stage k/n] INSTRUCTION args`. */
  start(step: number, label: string): void;
  output(step: number, chunk: Buffer): void;
  cached(step: number): void;
  done(step: number, ms: number): void;
  failed(step: number, ms: number): void;
  /** Anything else worth a line (warnings, "writing image"). */
  note(message: string): void;
}

export const silentBuildProgress: BuildProgress = {
  start: () => undefined,
  output: () => undefined,
  cached: () => undefined,
  done: () => undefined,
  failed: () => undefined,
  note: () => undefined,
};

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;
const TAIL_LINES = 30;
/** A longer line is cut: a step printing without newlines must not grow what is held. */
const MAX_LINE_CHARS = 4096;

/** Keeps the last lines of a step's output (shown again when it fails). */
class Tail {
  lines: string[] = [];
  partial = "";
  private readonly decoder = new StringDecoder("utf8");
  push(chunk: Buffer): string[] {
    // Only the new text is split: the held partial line is at most MAX_LINE_CHARS.
    const parts = this.decoder.write(chunk).split(/\r?\n/);
    parts[0] = this.partial + (parts[0] ?? "");
    this.partial = parts.pop() ?? "";
    const out: string[] = [];
    for (const line of parts) out.push(...cut(line));
    while (this.partial.length > MAX_LINE_CHARS) {
      out.push(this.partial.slice(0, MAX_LINE_CHARS));
      this.partial = this.partial.slice(MAX_LINE_CHARS);
    }
    this.lines.push(...out.slice(-TAIL_LINES));
    if (this.lines.length > TAIL_LINES) this.lines.splice(0, this.lines.length - TAIL_LINES);
    return out;
  }
}

function cut(line: string): string[] {
  if (line.length <= MAX_LINE_CHARS) return [line];
  const out: string[] = [];
  for (let i = 0; i < line.length; i += MAX_LINE_CHARS) out.push(line.slice(i, i + MAX_LINE_CHARS));
  return out;
}

/** The step's text for the terminal view: control characters (escapes) shown as `?`. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const printable = (s: string): string => s.replace(/[\x00-\x1f\x7f-\x9f]/g, "?");

export function plainBuildProgress(write: (text: string) => void): BuildProgress {
  const started = new Map<number, number>();
  const tails = new Map<number, Tail>();
  return {
    start(step, label) {
      started.set(step, Date.now());
      tails.set(step, new Tail());
      write(`#${step} ${label}\n`);
    },
    output(step, chunk) {
      const t = ((Date.now() - (started.get(step) ?? Date.now())) / 1000).toFixed(3);
      for (const line of tails.get(step)?.push(chunk) ?? []) write(`#${step} ${t} ${line}\n`);
    },
    cached: (step) => write(`#${step} CACHED\n`),
    done: (step, ms) => {
      const rest = tails.get(step)?.partial;
      if (rest) write(`#${step} ${rest}\n`);
      write(`#${step} DONE ${seconds(ms)}\n`);
    },
    failed: (step, ms) => write(`#${step} ERROR after ${seconds(ms)}\n`),
    note: (message) => write(`${message}\n`),
  };
}

/** The terminal view: finished steps scroll, the running one is redrawn in place. */
export function ttyBuildProgress(
  write: (text: string) => void,
  columns: () => number,
): BuildProgress {
  let current: { step: number; label: string; startedAt: number; tail: Tail } | undefined;
  let timer: NodeJS.Timeout | undefined;
  const fit = (s: string): string => s.slice(0, Math.max(10, columns() - 1));
  const redraw = (): void => {
    if (!current) return;
    const last = current.tail.partial || current.tail.lines[current.tail.lines.length - 1] || "";
    const head = `=> ${current.label} ${seconds(Date.now() - current.startedAt)}`;
    write(`\r\x1b[K${fit(last ? `${head}  ${printable(last.trim())}` : head)}`);
  };
  const finish = (suffix: string): void => {
    if (!current) return;
    clearInterval(timer);
    write(`\r\x1b[K${fit(`=> ${current.label}`)} ${suffix}\n`);
  };
  return {
    start(step, label) {
      current = { step, label: `#${step} ${label}`, startedAt: Date.now(), tail: new Tail() };
      redraw();
      timer = setInterval(redraw, 100);
      timer.unref();
    },
    output(step, chunk) {
      if (current?.step === step) current.tail.push(chunk);
    },
    cached: () => finish("CACHED"),
    done: (_step, ms) => finish(seconds(ms)),
    failed(_step, ms) {
      const tail = current?.tail;
      finish(`ERROR ${seconds(ms)}`);
      for (const line of [...(tail?.lines ?? []), ...(tail?.partial ? [tail.partial] : [])])
        write(`   ${printable(line)}\n`);
    },
    note: (message) => write(`\r\x1b[K${message}\n`),
  };
}
