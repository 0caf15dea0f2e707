/** What the starting process hands a supervisor on its stdin, and back on its stdout. */
import { ErrInvalidConfig, reviveError, WheellockError } from "../errors.js";
import { planFromValue, planToJson } from "../config/index.js";
import type { SuperviseRequest } from "./supervise.js";

/** Names the supervisor's stderr file, which it moves into the sandbox dir once it runs. */
export const SUPERVISOR_LOG_ENV = "WHEELLOCK_SUPERVISOR_LOG";
/** What the supervisor prints on stdout once the sandbox runs. */
export const READY_PREFIX = "ready ";
/** What it prints instead when the start failed: the typed error as JSON (code, message). */
export const FAILED_PREFIX = "failed ";

/**
 * The line a supervisor whose start failed prints, so the starting process throws the same
 * class and `code` an in-process `Sandbox.create` would have (ErrInvalidConfig, ErrImage,
 * ErrVolumeInUse, ...), not a generic "the supervisor exited".
 */
export function startFailedLine(err: unknown): string {
  const wire =
    err instanceof WheellockError
      ? { code: err.code, message: err.message }
      : { code: "ErrVMNotRunning", message: err instanceof Error ? err.message : String(err) };
  return `${FAILED_PREFIX}${JSON.stringify(wire)}\n`;
}

/** The error a `startFailedLine` stands for; undefined for anything else. */
export function readStartFailed(line: string): WheellockError | undefined {
  if (!line.startsWith(FAILED_PREFIX)) return undefined;
  try {
    const wire = JSON.parse(line.slice(FAILED_PREFIX.length)) as {
      code?: unknown;
      message?: unknown;
    };
    if (typeof wire.code !== "string" || typeof wire.message !== "string") return undefined;
    return reviveError(wire.code, wire.message);
  } catch {
    return undefined;
  }
}

/** The request as JSON; refuses plans that hold callbacks or custom providers. */
export function writeSupervisorStart(req: SuperviseRequest, label?: string): string {
  const { plan, ...rest } = req;
  return `{"plan":${planToJson(plan, label)},"rest":${JSON.stringify(rest)}}`;
}

export function readSupervisorStart(text: string): SuperviseRequest {
  let parsed: { plan?: unknown; rest?: Partial<SuperviseRequest> };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw new ErrInvalidConfig("the supervisor's start request is not valid JSON");
  }
  const rest = parsed.rest;
  if (
    typeof rest !== "object" ||
    rest === null ||
    !Array.isArray(rest.command) ||
    !Array.isArray(rest.ports) ||
    typeof rest.gracefulShutdownMs !== "number"
  )
    throw new ErrInvalidConfig("the supervisor's start request is incomplete");
  return {
    plan: planFromValue(parsed.plan),
    command: rest.command,
    ports: rest.ports,
    gracefulShutdownMs: rest.gracefulShutdownMs,
    ...(typeof rest.eventsPath === "string" ? { eventsPath: rest.eventsPath } : {}),
  };
}
