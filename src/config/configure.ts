/**
 * `configure`: secrets, allowlist entries, a policy script and env applied to a sandbox that is
 * already running (how a warm sandbox from a pool is personalised when it is handed out). The
 * options are checked here with the same checks as at create time, before anything changes.
 */
import { ErrInvalidConfig } from "../errors.js";
import { checkEnvRecord } from "./field-checks.js";
import { checkInterceptOptions } from "./intercept-checks.js";
import type { ResolvedSecret, SecretOption } from "./options.js";
import { checkScriptSource, type PolicyScriptSource } from "./policy-script-source.js";
import { secretValues } from "./rule-checks.js";

export interface ConfigureOptions {
  /** More secrets (names not used yet), each with the guarantees of `SandboxOptions.secrets`. */
  secrets?: Record<string, SecretOption>;
  /** Allowlist entries to add (as `allowHosts`); a secret's hosts are added too. */
  allowedHosts?: string[];
  /**
   * A policy script (a host path: on the node, for a remote sandbox) whose hooks replace those
   * of any script given before. Hook rules given at create time stay, in front of it.
   */
  policyScript?: string;
  /**
   * A policy script's content instead of its path: what a node passes on, having opened and
   * read the file a remote caller named (so what it checked is what runs). Self-contained:
   * it is loaded from a private copy, so relative imports do not resolve.
   */
  policyScriptSource?: PolicyScriptSource;
  /** Environment for every later command, over the sandbox's own `env`. */
  env?: Record<string, string>;
}

/** `ConfigureOptions`, checked; secret values apart, as in the plan. */
export interface ConfigurePlan {
  readonly secrets: readonly ResolvedSecret[];
  readonly secretValues: Readonly<Record<string, string>>;
  /** The caller's entries followed by every new secret's hosts. */
  readonly allowedHosts: readonly string[];
  /** Absolute path. */
  readonly policyScript: string | undefined;
  readonly policyScriptSource: PolicyScriptSource | undefined;
  readonly env: Readonly<Record<string, string>>;
}

const FIELDS = new Set(["secrets", "allowedHosts", "policyScript", "policyScriptSource", "env"]);

export function planConfigure(options: ConfigureOptions): ConfigurePlan {
  if (typeof options !== "object" || options === null || Array.isArray(options))
    throw new ErrInvalidConfig("configure options must be an object");
  const unknown = Object.keys(options).find((k) => !FIELDS.has(k));
  if (unknown !== undefined)
    throw new ErrInvalidConfig(
      `configure: unknown field ${JSON.stringify(unknown)} (known: ${[...FIELDS].join(", ")})`,
    );
  const network = checkInterceptOptions({
    ...(options.secrets !== undefined ? { secrets: options.secrets } : {}),
    ...(options.allowedHosts !== undefined ? { allowedHosts: options.allowedHosts } : {}),
    ...(options.policyScript !== undefined ? { policyScript: options.policyScript } : {}),
  });
  if (options.policyScriptSource !== undefined && options.policyScript !== undefined)
    throw new ErrInvalidConfig("configure: give policyScript or policyScriptSource, not both");
  return Object.freeze({
    secrets: network.secrets,
    secretValues: Object.freeze(secretValues(options.secrets)),
    allowedHosts: network.allowedHosts,
    policyScript: network.policyScript,
    policyScriptSource:
      options.policyScriptSource === undefined
        ? undefined
        : checkScriptSource("configure", options.policyScriptSource),
    env: Object.freeze(options.env === undefined ? {} : checkEnvRecord("env", options.env)),
  });
}

/** True when the change needs the intercepting proxy (an open-mode sandbox cannot take it). */
export function configureNeedsIntercept(plan: ConfigurePlan): boolean {
  return (
    plan.secrets.length > 0 ||
    plan.allowedHosts.length > 0 ||
    plan.policyScript !== undefined ||
    plan.policyScriptSource !== undefined
  );
}
