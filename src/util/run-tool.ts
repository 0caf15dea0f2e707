import { spawn } from "node:child_process";

export interface RunToolOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Called with each stderr/stdout line, for progress logs of long tools (mmdebstrap). */
  onLine?: (line: string) => void;
}

export interface RunToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** How much of a tool's output we keep: enough for an error line, bounded so a chatty tool cannot grow memory. */
const KEEP_CHARS = 64 * 1024;

/**
 * Runs an external tool from an argv array (never through a shell) and collects its output.
 * Resolves with the exit code; use `runToolOk` when a non-zero exit is an error.
 */
export function runTool(
  argv: readonly string[],
  opts: RunToolOptions = {},
): Promise<RunToolResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) return Promise.reject(new Error("runTool: empty argv"));
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let partial = "";
    const emitLines = (chunk: string): void => {
      if (!opts.onLine) return;
      partial += chunk;
      const lines = partial.split("\n");
      partial = lines.pop() ?? "";
      for (const l of lines) if (l.trim().length > 0) opts.onLine(l);
    };
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (d: string) => {
      stdout = (stdout + d).slice(-KEEP_CHARS);
      emitLines(d);
    });
    child.stderr.on("data", (d: string) => {
      stderr = (stderr + d).slice(-KEEP_CHARS);
      emitLines(d);
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (opts.onLine && partial.trim().length > 0) opts.onLine(partial);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

/** The last non-empty line(s) of a tool's output, for one-line error messages. */
export function outputTail(res: RunToolResult, maxChars = 300): string {
  const text = (res.stderr.trim() || res.stdout.trim()).replace(/\s*\n\s*/g, " | ");
  return text.length > maxChars ? `…${text.slice(-maxChars)}` : text;
}

/** Runs a tool and throws (via `makeError`) with the tool's name and stderr tail when it fails. */
export async function runToolOk(
  argv: readonly string[],
  makeError: (message: string, cause?: unknown) => Error,
  opts: RunToolOptions = {},
): Promise<RunToolResult> {
  // Under a wrapper (`unshare ... -- tar ...`) the tool that failed is the wrapped one.
  const sep = argv.indexOf("--");
  const name = (sep >= 0 ? argv[sep + 1] : undefined) ?? argv[0] ?? "?";
  let res: RunToolResult;
  try {
    res = await runTool(argv, opts);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw makeError(`${name}: could not start: ${msg}`, err);
  }
  if (res.code !== 0) throw makeError(`${name} failed (exit ${res.code}): ${outputTail(res)}`);
  return res;
}
