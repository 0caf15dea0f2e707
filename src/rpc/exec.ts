/**
 * `exec` (output collected, returned base64 in the result) and `exec_stream` (output as
 * `exec_stream.stdout` / `.stderr` notifications, then the exit code). Both close the command's
 * stdin at once, as the reference does.
 */
import type { Readable } from "node:stream";
import type { CallContext } from "./context.js";
import { execParams, finish, relay, spawnCommand } from "./exec-common.js";

/**
 * Output kept per stream for `exec` (wheellock's SDK default). Past it the command still runs
 * to its end; the rest of its output is read and dropped, so one result stays a sane size.
 */
export const MAX_EXEC_OUTPUT_BYTES = 64 * 1024 * 1024;

function collect(source: Readable, limitBytes: number): { done: Promise<void>; bytes(): Buffer } {
  const chunks: Buffer[] = [];
  let size = 0;
  const done = new Promise<void>((resolve) => {
    source.on("data", (chunk: Buffer) => {
      const room = limitBytes - size;
      if (room <= 0) return;
      const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
      chunks.push(kept);
      size += kept.length;
    });
    source.once("end", resolve);
    source.once("error", () => resolve());
    source.once("close", resolve);
  });
  return { done, bytes: () => Buffer.concat(chunks) };
}

export async function exec(params: unknown, ctx: CallContext): Promise<object> {
  const vm = ctx.session.currentVm();
  const proc = spawnCommand(vm, execParams(params, vm));
  proc.stdin.on("error", () => undefined);
  proc.stdin.end();
  const stdout = collect(proc.stdout, MAX_EXEC_OUTPUT_BYTES);
  const stderr = collect(proc.stderr, MAX_EXEC_OUTPUT_BYTES);
  const exit = await finish(proc, ctx, [stdout.done, stderr.done]);
  // Python indexes all four keys: stdout and stderr are present even when empty.
  return {
    exit_code: exit.exitCode,
    stdout: stdout.bytes().toString("base64"),
    stderr: stderr.bytes().toString("base64"),
    duration_ms: exit.durationMs,
  };
}

export async function execStream(params: unknown, ctx: CallContext): Promise<object> {
  const vm = ctx.session.currentVm();
  const proc = spawnCommand(vm, execParams(params, vm));
  proc.stdin.on("error", () => undefined);
  proc.stdin.end();
  const exit = await finish(proc, ctx, [
    relay(proc.stdout, "exec_stream.stdout", ctx),
    relay(proc.stderr, "exec_stream.stderr", ctx),
  ]);
  return { exit_code: exit.exitCode, duration_ms: exit.durationMs };
}
