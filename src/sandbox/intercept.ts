import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ResolvedSandboxConfig, SandboxOptions } from "../config/index.js";
import { ErrInvalidConfig } from "../errors.js";
import type { EgressPolicy } from "../net/index.js";
import type { NetworkEventInfo } from "../net/intercept/contract.js";
import { InterceptUpstream } from "../net/intercept/index.js";
import { createHttpPolicy, loadPolicyScript, type SecretSpec } from "../net/http-policy/index.js";
import { loadOrCreateCa } from "../net/tls/index.js";
import { dataDir } from "../paths.js";

export interface InterceptRequest {
  config: ResolvedSandboxConfig;
  /** The caller's options: secret values and hook callbacks live only there. */
  options: SandboxOptions;
  egress: EgressPolicy;
  resolveOverrides: ReadonlyMap<string, string>;
  resolve4?: (name: string) => Promise<string[]>;
  onEvent: (event: NetworkEventInfo) => void;
}

export interface InterceptSetup {
  upstream: InterceptUpstream;
  caPem: string;
  /** Secret name -> placeholder, for every command's env. */
  placeholders: Record<string, string>;
  close(): void;
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

/** Secret specs for the policy: values from the options, everything else as resolved. */
function secretSpecs(config: ResolvedSandboxConfig, options: SandboxOptions): SecretSpec[] {
  return config.secrets.map((s) => ({ ...s, value: options.secrets?.[s.name]?.value ?? "" }));
}

/** The intercepting upstream: the per-user CA, the HTTP policy (secrets, hooks, script). */
export async function createInterceptUpstream(req: InterceptRequest): Promise<InterceptSetup> {
  const { config, options } = req;
  const ca = await loadOrCreateCa(join(dataDir(), "ca"));
  const scriptRules =
    config.policyScript === undefined ? [] : await loadPolicyScript(config.policyScript);
  const httpPolicy = createHttpPolicy({
    secrets: secretSpecs(config, options),
    rules: [...(options.networkHooks ?? []), ...scriptRules],
  });
  const upstream = new InterceptUpstream({
    policy: req.egress,
    httpPolicy,
    ca: { certPem: ca.certPem, keyPem: ca.keyPem },
    upstreamCaPems: readUpstreamCas(config.upstreamCa),
    resolveOverrides: req.resolveOverrides,
    rawTcpAllow: config.allowTcp,
    onEvent: req.onEvent,
    ...(req.resolve4 ? { resolve4: req.resolve4 } : {}),
  });
  return {
    upstream,
    caPem: ca.certPem,
    placeholders: httpPolicy.placeholders(),
    close: () => upstream.close(),
  };
}
