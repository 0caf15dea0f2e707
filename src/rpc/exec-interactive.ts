/**
 * `exec_pipe` (stdin, stdout and stderr kept apart) and `exec_tty` (a pseudo-terminal: one
 * merged output, resizable). Both need a request id, since the client's input messages
 * (`exec_pipe.stdin {id, data}`, `...stdin_eof`, `exec_tty.resize`) name it; `ready` goes out
 * once they can be routed. Input that comes faster than the command reads it stops the
 * session from reading the client (the reference blocks its read loop the same way) rather
 * than piling up in host memory.
 */
import type { ExecProcess } from "../sandbox/index.js";
import type { CallContext, InputTarget, SessionState } from "./context.js";
import { execParams, finish, relay, spawnCommand } from "./exec-common.js";
import { numberField, objectParams, U16_MAX } from "./params.js";
import { RpcCode, RpcError } from "./wire.js";

const DEFAULT_ROWS = 24;
const DEFAULT_COLS = 80;
/**
 * What a terminal sends for end of input (Ctrl-D, VEOF). Closing a pseudo-terminal's input
 * does not end what reads it; the reference forwards nothing at all, so `cat` never ends.
 */
const TTY_EOF = Buffer.from([0x04]);

function requireId(ctx: CallContext, method: string): number {
  if (ctx.id === undefined)
    throw new RpcError(RpcCode.InvalidRequest, `${method} requires request id`);
  return ctx.id;
}

function inputTarget(
  proc: ExecProcess,
  session: SessionState,
  kind: InputTarget["kind"],
): InputTarget {
  const stdin = proc.stdin;
  stdin.on("error", () => undefined);
  return {
    kind,
    write: (data) => {
      if (stdin.writableEnded || stdin.destroyed) return;
      stdin.write(data);
      session.holdInputUntilDrained(stdin);
    },
    end: () => {
      if (stdin.writableEnded || stdin.destroyed) return;
      if (kind === "tty") stdin.write(TTY_EOF);
      else stdin.end();
    },
    resize: (rows, cols) => {
      try {
        proc.resize(rows, cols);
      } catch {
        // the command has ended
      }
    },
  };
}

export async function execPipe(params: unknown, ctx: CallContext): Promise<object> {
  const vm = ctx.session.currentVm();
  const id = requireId(ctx, "exec_pipe");
  const proc = spawnCommand(vm, execParams(params, vm));
  const unregister = ctx.session.registerInput(id, inputTarget(proc, ctx.session, "pipe"));
  try {
    ctx.notify("exec_pipe.ready");
    const exit = await finish(proc, ctx, [
      relay(proc.stdout, "exec_pipe.stdout", ctx),
      relay(proc.stderr, "exec_pipe.stderr", ctx),
    ]);
    return { exit_code: exit.exitCode, duration_ms: exit.durationMs };
  } finally {
    unregister();
  }
}

export async function execTty(params: unknown, ctx: CallContext): Promise<object> {
  const vm = ctx.session.currentVm();
  const id = requireId(ctx, "exec_tty");
  const p = objectParams(params);
  const size = {
    rows: numberField(p, "rows", { integer: true, max: U16_MAX }) || DEFAULT_ROWS,
    cols: numberField(p, "cols", { integer: true, max: U16_MAX }) || DEFAULT_COLS,
  };
  const startedAt = Date.now();
  const proc = spawnCommand(vm, execParams(p, vm), size);
  const unregister = ctx.session.registerInput(id, inputTarget(proc, ctx.session, "tty"));
  try {
    ctx.notify("exec_tty.ready");
    // The terminal merges the streams; anything on stderr goes out as terminal output too.
    const exit = await finish(proc, ctx, [
      relay(proc.stdout, "exec_tty.stdout", ctx),
      relay(proc.stderr, "exec_tty.stdout", ctx),
    ]);
    return { exit_code: exit.exitCode, duration_ms: Date.now() - startedAt };
  } finally {
    unregister();
  }
}
