/**
 * `create` and `close` (reference/matchlock-rpc.md §5.1, §5.14). Unlike the reference, both
 * cancel the requests running on the current VM instead of waiting for them, a second
 * `create` stops the previous VM (the reference leaks it), and `close` with a deadline stops
 * the VM at once when the clean poweroff does not finish in time, so it answers `{}` either
 * way. After `close` the session goes on: VM methods answer `VM not created`, `log` still
 * reads the closed VM's log, and `create` may start another VM.
 */
import { planSandbox } from "../config/index.js";
import { ErrInvalidConfig } from "../errors.js";
import type { ActiveVm, CallContext, RpcSandbox, SessionState } from "./context.js";
import { inReferenceTerms, mapCreatePayload, type CreatePlan } from "./create-payload.js";
import { startEntrypoint } from "./entrypoint.js";
import { appendGuestHosts } from "./guest-hosts.js";
import { numberField, objectParams } from "./params.js";
import { RpcCode, RpcError } from "./wire.js";

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Releases what hangs off a VM (not the VM). */
function detach(vm: ActiveVm): void {
  for (const fn of vm.detach.splice(0)) fn();
  vm.portForwards?.close();
  vm.portForwards = undefined;
}

/** Takes the session's VM away from it and releases what hangs off it. */
function takeVm(session: SessionState, keep: AbortSignal): ActiveVm | undefined {
  session.cancelInFlight(keep);
  const vm = session.peekVm();
  session.setVm(undefined);
  if (vm !== undefined) detach(vm);
  return vm;
}

/** The checks the plan makes (bad values, missing host files), as -32602 before any boot. */
function precheck(plan: CreatePlan): void {
  try {
    planSandbox(plan.options);
  } catch (err) {
    if (err instanceof ErrInvalidConfig)
      throw new RpcError(RpcCode.InvalidParams, inReferenceTerms(err.message));
    throw err;
  }
}

function defaultCwd(plan: CreatePlan, sandbox: RpcSandbox): string | undefined {
  // The reference: the request's working_dir, else the image WORKDIR, else the workspace.
  if (plan.options.workdir !== undefined || sandbox.image?.workdir) return undefined;
  return plan.workspace;
}

/** What `create` does once the VM runs; on failure the caller discards the VM. */
async function prepare(plan: CreatePlan, sandbox: RpcSandbox): Promise<ActiveVm> {
  const vm: ActiveVm = {
    sandbox,
    plan,
    defaultCwd: defaultCwd(plan, sandbox),
    detach: [],
    portForwards: undefined,
  };
  if (Object.keys(plan.guestHosts).length > 0) await appendGuestHosts(sandbox.api, plan.guestHosts);
  if (plan.launchEntrypoint) {
    const stop = await startEntrypoint(sandbox, {
      entrypoint: plan.entrypoint,
      cmd: plan.cmd,
      cwd: vm.defaultCwd,
    });
    vm.detach.push(stop);
  }
  return vm;
}

export async function create(params: unknown, ctx: CallContext): Promise<object> {
  const plan = mapCreatePayload(params);
  precheck(plan);
  const session = ctx.session;
  const previous = takeVm(session, ctx.signal);
  if (previous !== undefined) await previous.sandbox.close().catch(() => undefined);
  let sandbox: RpcSandbox;
  try {
    sandbox = await session.factory(plan.options);
  } catch (err) {
    const code = err instanceof ErrInvalidConfig ? RpcCode.InvalidParams : RpcCode.VmFailed;
    throw new RpcError(
      code,
      code === RpcCode.InvalidParams ? inReferenceTerms(message(err)) : message(err),
    );
  }
  let vm: ActiveVm | undefined;
  try {
    // The session ended (or this create was cancelled) while the VM booted: nobody will
    // know its id, so nothing of it may stay.
    if (ctx.signal.aborted) throw new RpcError(RpcCode.Cancelled, "context canceled");
    vm = await prepare(plan, sandbox);
    if (ctx.signal.aborted) throw new RpcError(RpcCode.Cancelled, "context canceled");
  } catch (err) {
    if (vm !== undefined) detach(vm);
    await sandbox.discard().catch(() => undefined);
    if (err instanceof RpcError) throw err;
    throw new RpcError(RpcCode.VmFailed, message(err));
  }
  vm.detach.push(session.forwardEvents(vm));
  session.setVm(vm);
  return { id: sandbox.id };
}

export async function close(params: unknown, ctx: CallContext): Promise<object> {
  let timeoutSeconds = 0;
  try {
    timeoutSeconds = numberField(objectParams(params, true), "timeout_seconds");
  } catch {
    // the reference ignores a close whose params it cannot read, and closes with no time
  }
  const vm = takeVm(ctx.session, ctx.signal);
  if (vm === undefined) return {};
  const sandbox = vm.sandbox;
  if (!(timeoutSeconds > 0)) {
    await sandbox.kill();
    return {};
  }
  let timer: NodeJS.Timeout | undefined;
  // Node timers hold at most 2^31-1 ms; a longer wait is as good as none.
  const waitMs = Math.min(timeoutSeconds * 1000, 2 ** 31 - 1);
  const late = new Promise<"late">(
    (resolve) => (timer = setTimeout(() => resolve("late"), waitMs)),
  );
  const closing = sandbox.close();
  try {
    if ((await Promise.race([closing, late])) === "late") await sandbox.kill();
    await closing;
  } catch (err) {
    throw new RpcError(RpcCode.VmFailed, message(err));
  } finally {
    clearTimeout(timer);
  }
  return {};
}
