/**
 * Intercept mode's proxy for one sandbox: the per-user CA, secrets and hook rules, the upstream
 * (loaded on demand).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ConfigurePlan, ResolvedSecret, SandboxPlan } from "../config/index.js";
import { ErrInvalidConfig } from "../errors.js";
import {
  loadInterceptModules,
  type EgressPolicy,
  type HttpPolicy,
  type Upstream,
  type NetworkEventInfo,
  type RequestOutcome,
  type SecretSpec,
} from "../net/index.js";
import { dataDir } from "../paths.js";
import type { InterceptHooks } from "./observer.js";

export interface InterceptRequest {
  plan: SandboxPlan;
  egress: EgressPolicy;
  resolveOverrides: ReadonlyMap<string, string>;
  resolve4?: (name: string) => Promise<string[]>;
  onEvent: (event: NetworkEventInfo) => void;
  hooks: InterceptHooks;
}

export interface InterceptSetup {
  upstream: Upstream & { close(): void; endInFlight(outcome: RequestOutcome): void };
  caPem: string;
  /** Secret name -> placeholder, for every command's env (updated by `configure`). */
  placeholders: Record<string, string>;
  close(): void;
  /** Adds secrets and allowlist entries, replaces the policy script (checked already). */
  configure(change: ConfigurePlan): Promise<void>;
}

function readUpstreamCas(paths: readonly string[]): string[] {
  return paths.map((path) => {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      throw new ErrInvalidConfig(
        `upstreamCa: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
      );
    }
    if (!text.includes("-----BEGIN CERTIFICATE-----"))
      throw new ErrInvalidConfig(`upstreamCa: ${path} holds no PEM certificate`);
    return text;
  });
}

/** The PEM texts of the plan's upstream CAs: its files read now, and the contents a node read. */
export function trustedUpstreamCas(
  plan: Pick<SandboxPlan, "upstreamCa" | "upstreamCaPems">,
): string[] {
  return [...readUpstreamCas(plan.upstreamCa), ...plan.upstreamCaPems];
}

/** Secret specs for the policy: each secret as resolved, with its value. */
function secretSpecs(
  secrets: readonly ResolvedSecret[],
  values: Readonly<Record<string, string>>,
): SecretSpec[] {
  return secrets.map((s) => ({ ...s, value: values[s.name] ?? "" }));
}

/**
 * The request budget goes first: a request beyond it is refused before any hook or secret
 * sees it (it never leaves the host). `overBudget` counts the request and says why it is
 * refused, if it is.
 */
function withRequestBudget(policy: HttpPolicy, overBudget: () => string | undefined): HttpPolicy {
  return {
    onRequest: async (request, body) => {
      const reason = overBudget();
      return reason === undefined
        ? policy.onRequest(request, body)
        : { action: "block", code: "budget_exceeded", reason };
    },
    onResponse: (request, response, body) => policy.onResponse(request, response, body),
    ...(policy.secretLeak ? { secretLeak: policy.secretLeak } : {}),
  };
}

/** The intercepting upstream: the per-user CA, the HTTP policy (secrets, hooks, script). */
export async function createInterceptUpstream(req: InterceptRequest): Promise<InterceptSetup> {
  const { plan } = req;
  const {
    createHttpPolicy,
    InterceptUpstream,
    loadOrCreateCa,
    loadPolicyScript,
    loadPolicyScriptSource,
  } = await loadInterceptModules();
  const ca = await loadOrCreateCa(join(dataDir(), "ca"));
  const source = plan.policyScriptSource;
  let scriptRules =
    source !== undefined
      ? await loadPolicyScriptSource(source.name, source.text)
      : plan.policyScript === undefined
        ? []
        : await loadPolicyScript(plan.policyScript);
  let secrets = secretSpecs(plan.secrets, plan.secretValues);
  let current = createHttpPolicy({ secrets, rules: [...plan.networkHooks, ...scriptRules] });
  // The proxy keeps this one object; `configure` swaps the policy behind it. A request in
  // flight finishes under the policy it started with.
  const httpPolicy: HttpPolicy = {
    onRequest: (request, body) => current.onRequest(request, body),
    onResponse: (request, response, body) => current.onResponse(request, response, body),
    // Live approval asks this before anyone is asked: a secret leak is never approvable.
    secretLeak: (request) => current.secretLeak?.(request),
  };
  const { hooks } = req;
  const maxRequests = plan.budgets.maxRequests;
  // HTTP requests (WebSocket upgrades included) and raw TCP relays draw on one budget.
  const overBudget =
    maxRequests === undefined
      ? undefined
      : () =>
          hooks.admitRequest() ? undefined : `request budget spent (maxRequests ${maxRequests})`;
  const upstream = new InterceptUpstream({
    policy: req.egress,
    httpPolicy: overBudget === undefined ? httpPolicy : withRequestBudget(httpPolicy, overBudget),
    ...(overBudget ? { refuseRawRelay: overBudget } : {}),
    ...(hooks.origin ? { origin: hooks.origin } : {}),
    ...(hooks.onHostRefused ? { onHostRefused: hooks.onHostRefused } : {}),
    ...(hooks.upstreamHeaders ? { upstreamHeaders: hooks.upstreamHeaders } : {}),
    ca: { certPem: ca.certPem, keyPem: ca.keyPem },
    upstreamCaPems: trustedUpstreamCas(plan),
    resolveOverrides: req.resolveOverrides,
    rawTcpAllow: plan.allowTcp,
    onEvent: req.onEvent,
    ...(req.resolve4 ? { resolve4: req.resolve4 } : {}),
  });
  const setup: InterceptSetup = {
    upstream,
    caPem: ca.certPem,
    placeholders: current.placeholders(),
    close: () => upstream.close(),
    configure: async (change) => {
      const taken = change.secrets.find((s) => secrets.some((old) => old.name === s.name));
      if (taken !== undefined)
        throw new ErrInvalidConfig(`secret ${taken.name} is already set in this sandbox`);
      const source = change.policyScriptSource;
      const rules =
        source !== undefined
          ? await loadPolicyScriptSource(source.name, source.text)
          : change.policyScript !== undefined
            ? await loadPolicyScript(change.policyScript)
            : scriptRules;
      // Secrets set before keep their placeholders: commands running now hold them.
      const kept = current.placeholders();
      const all = [
        ...secrets.map((s) => ({ ...s, placeholder: kept[s.name] })),
        ...secretSpecs(change.secrets, change.secretValues),
      ];
      const next = createHttpPolicy({ secrets: all, rules: [...plan.networkHooks, ...rules] });
      current = next;
      secrets = all;
      scriptRules = rules;
      req.egress.allowlist.add([...change.allowedHosts]);
      setup.placeholders = next.placeholders();
    },
  };
  return setup;
}
