/**
 * `launch_entrypoint` (reference/matchlock-rpc.md §5.1 step 9): once the VM runs, the image's
 * ENTRYPOINT + CMD (after `image_config` overrides) starts detached, stdin empty, its output
 * appended to the VM log. If it fails or exits non-zero within 500 ms, `create` fails; else
 * it runs until `close` or the next `create`. The argv is run as it is (the reference wraps
 * it in `sh -c` with shell quoting, which needs a shell in the image and changes nothing else).
 */
import { createWriteStream } from "node:fs";
import { composeCommand } from "../config/index.js";
import type { ImageDefaults, RpcSandbox } from "./context.js";

/** How long the entrypoint must survive for `create` to succeed. */
export const ENTRYPOINT_FAILURE_WINDOW_MS = 500;

export interface EntrypointSpec {
  readonly entrypoint: readonly string[] | undefined;
  readonly cmd: readonly string[] | undefined;
  readonly cwd: string | undefined;
}

/** The command `launch_entrypoint` runs (empty: nothing to run). */
export function entrypointArgv(image: ImageDefaults | undefined, spec: EntrypointSpec): string[] {
  if (image === undefined && spec.entrypoint === undefined && spec.cmd === undefined) return [];
  return composeCommand(
    { entrypoint: spec.entrypoint ?? image?.entrypoint, cmd: spec.cmd ?? image?.cmd },
    [],
  );
}

/** Starts the entrypoint; resolves with its stop function, or rejects with the early failure. */
export async function startEntrypoint(
  sandbox: RpcSandbox,
  spec: EntrypointSpec,
): Promise<() => void> {
  const argv = entrypointArgv(sandbox.image, spec);
  if (argv.length === 0) return () => undefined;
  const proc = sandbox.api.spawn(argv, spec.cwd !== undefined ? { cwd: spec.cwd } : {});
  proc.stdin.on("error", () => undefined);
  proc.stdin.end();
  const log = createWriteStream(sandbox.logPath, { flags: "a" });
  log.on("error", () => undefined);
  let open = 2;
  for (const stream of [proc.stdout, proc.stderr]) {
    stream.pipe(log, { end: false });
    stream.once("close", () => {
      if (--open === 0) log.end();
    });
  }
  let timer: NodeJS.Timeout | undefined;
  const early = await Promise.race([
    proc.wait().then(
      (exit) => ({ exit }),
      (err: Error) => ({ err }),
    ),
    new Promise<"running">(
      (resolve) => (timer = setTimeout(() => resolve("running"), ENTRYPOINT_FAILURE_WINDOW_MS)),
    ),
  ]);
  clearTimeout(timer);
  if (early !== "running") {
    if ("err" in early) throw new Error(`start image entrypoint: ${early.err.message}`);
    if (early.exit.exitCode !== 0)
      throw new Error(`start image entrypoint: exit code ${early.exit.exitCode}`);
    return () => undefined;
  }
  return () => proc.abandon();
}
