/**
 * What the exec methods share: their params (`command` runs as `/bin/sh -c`, as in the
 * reference), starting the command on the session's VM, relaying output as notifications with
 * back-pressure, and ending on cancel. The reference's error codes: -32001 when the command
 * could not run, -32003 when its request was cancelled (`cancel`, `close`, EOF).
 */
import type { Readable } from "node:stream";
import type { ExecExit, ExecProcess, SpawnOptions } from "../sandbox/index.js";
import type { ActiveVm, CallContext } from "./context.js";
import { objectParams, stringField } from "./params.js";
import { RpcCode, RpcError } from "./wire.js";

export interface ExecParams {
  readonly command: string;
  readonly cwd: string | undefined;
  readonly user: string | undefined;
}

export function execParams(params: unknown, vm: ActiveVm): ExecParams {
  const p = objectParams(params);
  const cwd = stringField(p, "working_dir");
  const user = stringField(p, "user");
  return {
    command: stringField(p, "command"),
    cwd: cwd !== "" ? cwd : vm.defaultCwd,
    user: user !== "" ? user : undefined,
  };
}

export function execFailure(err: unknown, signal: AbortSignal): RpcError {
  if (signal.aborted) return new RpcError(RpcCode.Cancelled, "context canceled");
  if (err instanceof RpcError) return err;
  return new RpcError(RpcCode.ExecFailed, err instanceof Error ? err.message : String(err));
}

/** Starts the command; a sandbox that cannot run it is an ExecFailed error. */
export function spawnCommand(vm: ActiveVm, p: ExecParams, tty?: SpawnOptions["tty"]): ExecProcess {
  try {
    return vm.sandbox.api.spawn(p.command, {
      ...(p.cwd !== undefined ? { cwd: p.cwd } : {}),
      ...(p.user !== undefined ? { user: p.user } : {}),
      ...(tty !== undefined ? { tty } : {}),
    });
  } catch (err) {
    throw new RpcError(RpcCode.ExecFailed, err instanceof Error ? err.message : String(err));
  }
}

/** Each chunk of `source` as a `method` notification; pauses while the client is not reading. */
export function relay(source: Readable, method: string, ctx: CallContext): Promise<void> {
  return new Promise((resolve) => {
    source.on("data", (chunk: Buffer) => {
      ctx.notify(method, { data: chunk.toString("base64") });
      if (ctx.backedUp() && !source.isPaused()) {
        source.pause();
        void ctx.writable().then(() => source.resume());
      }
    });
    source.once("end", resolve);
    source.once("error", () => resolve());
    source.once("close", resolve);
  });
}

/**
 * Waits for the command to exit and its output to be delivered; on cancel the guest process
 * is abandoned (the guest kills its process group) and the call fails with -32003.
 */
export async function finish(
  proc: ExecProcess,
  ctx: CallContext,
  outputs: ReadonlyArray<Promise<void>>,
): Promise<ExecExit> {
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      proc.abandon();
      reject(new RpcError(RpcCode.Cancelled, "context canceled"));
    };
    if (ctx.signal.aborted) onAbort();
    else ctx.signal.addEventListener("abort", onAbort, { once: true });
  });
  aborted.catch(() => undefined);
  try {
    const [exit] = await Promise.race([Promise.all([proc.wait(), ...outputs]), aborted]);
    return exit;
  } catch (err) {
    throw execFailure(err, ctx.signal);
  } finally {
    ctx.signal.removeEventListener("abort", onAbort);
  }
}
