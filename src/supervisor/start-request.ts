/** What the starting process hands a supervisor on its stdin, and back on its stdout. */
import { ErrInvalidConfig } from "../errors.js";
import { planFromValue, planToJson } from "../config/index.js";
import type { SuperviseRequest } from "./supervise.js";

/** Names the supervisor's stderr file, which it moves into the sandbox dir once it runs. */
export const SUPERVISOR_LOG_ENV = "WHEELLOCK_SUPERVISOR_LOG";
/** What the supervisor prints on stdout once the sandbox runs. */
export const READY_PREFIX = "ready ";

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
